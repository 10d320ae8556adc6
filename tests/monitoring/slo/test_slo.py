"""SLO figures against fixtures computed by hand: attainment, budget, burn rates, percentiles."""

import math
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from integration_hub.models import Flow, Plant, System
from monitoring.models import SLO, Rollup, SLOStatus, SLOThreshold, StuckSummary
from monitoring.slo import outcomes
from monitoring.slo.evaluation import run_evaluation
from monitoring.slo.figures import evaluate_slos, judge, latency_percentiles
from tests.events import event, failed
from tests.monitoring.slo.conftest import NOW, evaluate, hms, release
from tracing.ingest.pipeline import ingest_events
from tracing.models import DeadLetter

pytestmark = pytest.mark.django_db
BUCKET = 10 ** (1 / 20)


# (correlation id, released, ack latency s): see the counts worked out in the test below.
RELEASES = [
    ("A", hms("11:58:00"), 30),  # good, counts at 11:58:30
    ("B", hms("11:50:00"), 90),  # bad, counts when 60 s passed: 11:51:00
    ("C", hms("11:57:30"), None),  # never acknowledged: bad at 11:58:30
    ("K", hms("11:59:30"), None),  # threshold not passed yet: not counted
] + [(f"D{i}", hms(f"09:0{i}:00"), 10 * (i + 1)) for i in range(7)]  # 10..70 s: the last is bad


def status(slug, plant=None):
    return (
        SLOStatus.objects.get(slo__slug=slug, plant__code=plant)
        if plant
        else SLOStatus.objects.get(slo__slug=slug, plant__isnull=True)
    )


@pytest.fixture
def releases(p100, p200):
    events = [e for corr, at, lat in RELEASES for e in release(corr, at, lat)]
    events += release("P2", hms("11:40:00"), 5, plant="P200")
    ingest_events(events, now=NOW)
    return events


def test_latency_slo_figures_by_hand(releases):
    evaluate()
    p100 = status("order-release-latency", "P100")
    # Counted: A, B, C and D0..D6 = 10; good: A and D0..D5 = 7.
    assert (p100.good, p100.total) == (7, 10)
    assert p100.attainment == pytest.approx(0.7)
    assert p100.error_budget_total == pytest.approx(0.1)  # 1 % of 10 events
    assert p100.error_budget_remaining == pytest.approx(1 - 3 / 0.1)
    # 5 m (from 11:55): A good, C bad → 1/2 bad. 30 m and 1 h: A, B, C → 2/3. 6 h and 3 d: 3/10.
    assert p100.burn_rates == {
        "5m": pytest.approx(50.0),
        "30m": pytest.approx(66.6667, rel=1e-4),
        "1h": pytest.approx(66.6667, rel=1e-4),
        "6h": pytest.approx(30.0),
        "3d": pytest.approx(30.0),
    }
    assert p100.status == "breaching"
    assert (
        status("order-release-latency", "P200").good,
        status("order-release-latency", "P200").total,
    ) == (1, 1)
    overall = status("order-release-latency")
    assert (overall.good, overall.total) == (8, 11)
    assert overall.attainment == pytest.approx(8 / 11)


def test_percentiles_are_within_one_bucket_of_the_exact_values(releases):
    evaluate()
    slo = SLO.objects.get(slug="order-release-latency")
    plant = Plant.objects.get(code="P100")
    exact = sorted([30, 90] + [10 * (i + 1) for i in range(7)])  # C has no latency yet
    got = latency_percentiles(slo, plant_id=plant.id, since=NOW - timedelta(days=1), until=NOW)
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
        true = exact[math.ceil(q * len(exact)) - 1]
        assert true <= got[name] <= true * BUCKET, (name, true, got[name])


def test_a_plant_threshold_override_changes_its_figures(releases):
    slo = SLO.objects.get(slug="order-release-latency")
    SLOThreshold.objects.create(
        slo=slo, plant=Plant.objects.get(code="P100"), threshold_seconds=100
    )
    outcomes.rebuild(NOW)
    evaluate_slos(NOW)
    # With 100 s: B (90 s) and D6 (70 s) become good; C is bad at 11:59:10; K still pending.
    assert (
        status("order-release-latency", "P100").good,
        status("order-release-latency", "P100").total,
    ) == (9, 10)


def test_out_of_order_and_piecewise_arrival_give_the_same_figures(releases, p100):
    evaluate()
    expected = {
        (s.slo_id, s.plant_id): (s.good, s.total, s.burn_rates) for s in SLOStatus.objects.all()
    }
    from tracing.models import Transaction

    Transaction.objects.all().delete()
    outcomes.rebuild(NOW)
    shuffled = list(reversed(releases))
    for start in range(0, len(shuffled), 4):
        ingest_events(shuffled[start : start + 4], now=NOW)
        outcomes.refresh(NOW)
    evaluate_slos(NOW)
    got = {(s.slo_id, s.plant_id): (s.good, s.total, s.burn_rates) for s in SLOStatus.objects.all()}
    assert got == expected


def test_a_late_event_that_moves_a_milestone_corrects_the_figures(p100):
    ingest_events(release("L", hms("11:50:00"), 90), now=NOW)
    evaluate()
    assert (
        status("order-release-latency", "P100").good,
        status("order-release-latency", "P100").total,
    ) == (0, 1)
    early_ack = event(
        "acknowledged", correlation_id="L", at=hms("11:50:40"), source="MES", event_id="L-a0"
    )
    ingest_events([early_ack], now=NOW)
    evaluate()
    assert (
        status("order-release-latency", "P100").good,
        status("order-release-latency", "P100").total,
    ) == (1, 1)
    assert Rollup.objects.filter(slo__slug="order-release-latency").count() == 1


def test_a_pending_item_counts_bad_once_its_threshold_passes(p100):
    ingest_events(release("P", hms("11:59:30")), now=NOW)
    evaluate()
    assert (
        status("order-release-latency", "P100").total == 0
        if SLOStatus.objects.filter(slo__slug="order-release-latency", plant__code="P100").exists()
        else True
    )
    evaluate(NOW + timedelta(seconds=45))
    later = status("order-release-latency", "P100")
    assert (later.good, later.total) == (0, 1)


def test_rebuilding_from_raw_data_gives_the_incremental_figures(releases, p100):
    confirm = {"flow": "production_confirmation", "source": "MES", "target": "ERP"}
    ingest_events(
        [
            event("confirmed", correlation_id="C1", at=hms("10:00:00"), **confirm),
            failed("posted", correlation_id="C1", at=hms("10:00:30"), **confirm),
        ],
        now=NOW,
    )
    outcomes.refresh(NOW - timedelta(minutes=30))
    ingest_events(
        [
            event(
                "posted",
                correlation_id="C1",
                at=hms("10:04:00"),
                source="ERP",
                flow="production_confirmation",
            )
        ],
        now=NOW,
    )
    outcomes.refresh(NOW)

    def snapshot():
        return sorted(
            (r.slo_id, r.plant_id, r.minute, r.good, r.total, tuple(sorted(r.histogram.items())))
            for r in Rollup.objects.all()
        )

    incremental = snapshot()
    outcomes.rebuild(NOW)
    assert snapshot() == incremental
    assert len(incremental) > 5


def test_success_slo_by_hand(p100):
    confirm = {"flow": "production_confirmation", "target": "ERP"}
    ingest_events(
        [
            event("confirmed", correlation_id="S1", at=hms("10:00:00"), source="MES", **confirm),
            event("posted", correlation_id="S1", at=hms("10:01:00"), source="ERP", **confirm),
            event("confirmed", correlation_id="S2", at=hms("10:10:00"), source="MES", **confirm),
            event("posted", correlation_id="S2", at=hms("10:10:30"), source="ERP", **confirm),
            # failed, then posted after all: still not "without a failure"
            event("confirmed", correlation_id="S3", at=hms("10:20:00"), source="MES", **confirm),
            failed("posted", correlation_id="S3", at=hms("10:20:10"), source="ERP", **confirm),
            event("posted", correlation_id="S3", at=hms("10:25:00"), source="ERP", **confirm),
            # open past the flow's 1 h stuck time: bad
            event("confirmed", correlation_id="S4", at=hms("10:30:00"), source="MES", **confirm),
            # open, not yet stuck: not counted
            event("confirmed", correlation_id="S5", at=hms("11:45:00"), source="MES", **confirm),
        ],
        now=NOW,
    )
    evaluate()
    success = status("confirmation-success", "P100")
    assert (success.good, success.total) == (2, 4)
    assert success.error_budget_total == pytest.approx(0.02)
    assert success.burn_rates["6h"] == pytest.approx(0.5 / 0.005)
    assert success.burn_rates["1h"] == pytest.approx(1 / 0.005)  # only S4 (11:30) in the last hour


def test_age_slos_for_quality_holds_and_dead_letters(p100):
    hold = {"flow": "quality_hold", "source": "QMS", "target": "ERP"}
    ingest_events(
        [
            event("hold_applied", correlation_id="H1", at=NOW - timedelta(hours=5), **hold),
            event("hold_applied", correlation_id="H2", at=NOW - timedelta(hours=6), **hold),
            event("released", correlation_id="H2", at=NOW - timedelta(hours=5), **hold),
        ],
        now=NOW,
    )
    holds = {"good": 1, "total": 2}
    common = dict(
        flow=Flow.objects.get(code="order_release"),
        plant=Plant.objects.get(code="P100"),
        source=System.objects.get(code="MES"),
        error_class="master_data",
        fingerprint="f",
    )
    DeadLetter.objects.create(
        external_id="old-open",
        first_failed_at=NOW - timedelta(hours=30),
        last_failed_at=NOW,
        **common,
    )
    DeadLetter.objects.create(
        external_id="new-open",
        first_failed_at=NOW - timedelta(hours=2),
        last_failed_at=NOW,
        **common,
    )
    DeadLetter.objects.create(
        external_id="closed-in-time",
        first_failed_at=NOW - timedelta(hours=30),
        last_failed_at=NOW,
        closed_at=NOW - timedelta(hours=29),
        state="resolved",
        **common,
    )
    evaluate()
    held = status("stuck-quality-holds", "P100")
    assert {"good": held.good, "total": held.total} == holds
    aging = status("exception-aging", "P100")
    assert (aging.good, aging.total) == (1, 2)


@pytest.mark.parametrize(
    "rates, expected",
    [
        ({"5m": 15, "30m": 0, "1h": 15, "6h": 0, "3d": 0}, "breaching"),
        ({"5m": 15, "30m": 0, "1h": 14, "6h": 0, "3d": 0}, "ok"),
        ({"5m": 0, "30m": 7, "1h": 0, "6h": 7, "3d": 0}, "breaching"),
        ({"5m": 0, "30m": 0, "1h": 0, "6h": 1.5, "3d": 1.2}, "warning"),
        ({"5m": 0, "30m": 0, "1h": 0, "6h": 0.9, "3d": 5}, "ok"),
    ],
)
def test_status_follows_the_multiwindow_rules(rates, expected):
    slo = SLO.objects.get(slug="order-release-latency")
    status, _ = judge(slo, burn_rates=rates, total=1000, attainment=0.999, budget_remaining=0.9)
    assert status == expected


def test_evaluation_cost_does_not_grow_with_events(p100, django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ingest_events([e for i in range(3) for e in release(f"X{i}", hms("11:00:00"), 20)], now=NOW)
    outcomes.refresh(NOW)
    with CaptureQueriesContext(connection) as few:
        evaluate_slos(NOW)
    ingest_events(
        [
            e
            for i in range(300)
            for e in release(f"Y{i}", hms("10:00:00") + timedelta(seconds=i), 20)
        ],
        now=NOW,
    )
    outcomes.refresh(NOW)
    with CaptureQueriesContext(connection) as many:
        evaluate_slos(NOW)
    assert len(many) == len(few)


def test_run_evaluation_marks_stuck_and_keeps_the_stuck_summary(p100):
    for corr, hours in (("S", 2), ("T", 1)):
        started = NOW - timedelta(hours=hours)
        ingest_events(release(corr, started), now=started + timedelta(minutes=1))
    summary = run_evaluation(NOW)
    assert summary["marked_stuck"] == 2
    row = StuckSummary.objects.get()
    assert (row.flow.code, row.plant.code, row.count) == ("order_release", "P100", 2)
    assert row.oldest_since == NOW - timedelta(hours=2)


def test_evaluate_slos_command_prints_each_status(p100, capsys):
    ingest_events(release("A", datetime.now(UTC) - timedelta(minutes=2), 30))
    call_command("evaluate_slos")
    out = capsys.readouterr().out
    assert "Order release latency" in out
    assert "P100" in out and "1/1" in out
