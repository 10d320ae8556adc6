"""The clock stops in planned downtime: SLO latency counts only time outside it, a downtime
created late corrects the figures of its span, and silence rules keep quiet in it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from integration_hub import calendars
from integration_hub.models import Downtime, Shift, System
from monitoring.alerts.lifecycle import evaluate_alerts
from monitoring.models import Alert, AlertRule, Outcome, Rollup
from monitoring.slo import tasks
from tests.events import event
from tests.monitoring.slo.conftest import NOW, evaluate, release
from tracing.ingest.pipeline import ingest_events
from tracing.models import Transaction

pytestmark = pytest.mark.django_db
S = timedelta(seconds=1)
STOP = (NOW - timedelta(hours=3), NOW - timedelta(hours=1))


@pytest.fixture
def workers(monkeypatch, django_capture_on_commit_callbacks):
    """Runs the recompute task the API asks for, as a worker would, when the request commits."""

    def run(name, args):
        assert name == "monitoring.recompute_downtime"
        tasks.recompute_downtime(*args)

    monkeypatch.setattr(calendars.app, "send_task", run)
    return django_capture_on_commit_callbacks


def release_outcome():
    return Outcome.objects.get(slo__slug="order-release-latency", transaction__isnull=False)


def test_a_downtime_created_later_corrects_the_latency_and_the_rollups(admin_api, p100, workers):
    # released 10 s before the stop, acknowledged 20 s after it: 2 h 30 s by the wall clock
    released = STOP[0] - 10 * S
    ingest_events(release("PO-1", released, latency=7230), now=NOW)
    evaluate()
    before = release_outcome()
    assert (before.good, before.latency) == (False, 7230)

    with workers(execute=True):
        response = admin_api.post(
            "/api/v1/plants/P100/downtime",
            {"start": STOP[0].isoformat(), "end": STOP[1].isoformat(), "reason": "Line stop"},
            format="json",
        )
    assert response.status_code == 201
    after = release_outcome()
    assert (after.good, after.latency) == (True, 30)
    rollups = Rollup.objects.filter(slo__slug="order-release-latency", plant=p100)
    assert sum(r.good for r in rollups) == 1 and sum(r.total for r in rollups) == 1
    status = evaluate()
    mine = next(s for s in status if s.slo.slug == "order-release-latency" and s.plant_id)
    assert (mine.good, mine.total, mine.status) == (1, 1, "ok")

    with workers(execute=True):
        admin_api.delete(f"/api/v1/plants/P100/downtime/{response.json()['id']}")
    assert (release_outcome().good, release_outcome().latency) == (False, 7230)


def test_a_downtime_for_other_flows_does_not_stop_this_clock(admin_api, p100, workers):
    ingest_events(release("PO-2", STOP[0] - 10 * S, latency=7230), now=NOW)
    with workers(execute=True):
        admin_api.post(
            "/api/v1/plants/P100/downtime",
            {"start": STOP[0].isoformat(), "end": STOP[1].isoformat(), "reason": "Stocktake",
             "flows": ["goods_receipt"]},
            format="json",
        )  # fmt: skip
    evaluate()
    assert release_outcome().latency == 7230


@pytest.fixture
def quiet_mes(p100):
    mes = System.objects.get(code="MES")
    rule = AlertRule.objects.create(
        name="MES quiet", kind="silence", system=mes, plant=p100, threshold_seconds=600
    )
    last = NOW - timedelta(minutes=30)
    ingest_events(release("PO-9", last - timedelta(seconds=5), latency=5), now=last)
    return rule


def test_a_silent_system_fires_outside_downtime(quiet_mes):
    evaluate_alerts(NOW)
    assert Alert.objects.get().rule == quiet_mes


def test_silence_does_not_fire_in_planned_downtime(quiet_mes, p100):
    Downtime.objects.create(plant=p100, start=NOW - timedelta(minutes=5), end=NOW + S, reason="x")
    evaluate_alerts(NOW)
    assert Alert.objects.count() == 0


def test_silence_counts_only_quiet_time_outside_downtime(quiet_mes, p100):
    # 30 min quiet, 25 of them planned: 5 min count, under the 10 min threshold
    Downtime.objects.create(
        plant=p100, start=NOW - timedelta(minutes=28), end=NOW - timedelta(minutes=3), reason="x"
    )
    evaluate_alerts(NOW)
    assert Alert.objects.count() == 0


def test_a_silence_rule_limited_to_shifts_keeps_quiet_between_them(quiet_mes, p100):
    quiet_mes.only_in_shifts = True
    quiet_mes.save()
    local = NOW.astimezone(p100.tzinfo)
    later = (local + timedelta(hours=2)).time().replace(microsecond=0)
    Shift.objects.create(
        plant=p100, name="Late", days=list(range(7)), start=later, end=later.replace(minute=59)
    )
    evaluate_alerts(NOW)
    assert Alert.objects.count() == 0
    Shift.objects.create(
        plant=p100, name="Now", days=list(range(7)),
        start=(local - timedelta(hours=1)).time(), end=(local + timedelta(hours=1)).time(),
    )  # fmt: skip
    evaluate_alerts(NOW)
    assert Alert.objects.count() == 1


def test_stuck_after_counts_only_time_outside_downtime(admin_api, p100, workers):
    """Order release: stuck after 30 min. Released 20 min ago, a stop from 10 min ago for an
    hour: 20 min counted so far, so it is due 10 min after the stop ends."""
    now = timezone.now()
    released = now - timedelta(minutes=20)
    ingest_events([event("released", correlation_id="PO-30", at=released)], now=now)
    txn = Transaction.objects.get(correlation_id="PO-30")
    assert txn.stuck_at == released + timedelta(minutes=30)
    stop = (now - timedelta(minutes=10), now + timedelta(minutes=50))
    with workers(execute=True):
        admin_api.post(
            "/api/v1/plants/P100/downtime",
            {"start": stop[0].isoformat(), "end": stop[1].isoformat(), "reason": "Stop"},
            format="json",
        )
    txn.refresh_from_db()
    assert txn.stuck_at == stop[1] + timedelta(minutes=20)
    # a transaction that starts inside the stop: its clock starts when the stop ends
    ingest_events([event("released", correlation_id="PO-31", at=now)], now=now)
    assert Transaction.objects.get(correlation_id="PO-31").stuck_at == stop[1] + timedelta(
        minutes=30
    )


def test_removing_a_past_downtime_makes_an_overdue_order_stuck(admin_api, p100, workers):
    now = timezone.now()
    released = now - timedelta(hours=2)
    row = Downtime.objects.create(
        plant=p100, start=released, end=now - timedelta(minutes=10), reason="Stop"
    )
    ingest_events([event("released", correlation_id="PO-32", at=released)], now=now)
    assert Transaction.objects.get(correlation_id="PO-32").state == "in_flight"
    with workers(execute=True):
        admin_api.delete(f"/api/v1/plants/P100/downtime/{row.pk}")
    assert Transaction.objects.get(correlation_id="PO-32").state == "stuck"
