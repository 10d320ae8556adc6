"""SLO figures and dashboards over kept ranges are the same before and after a purge, and stay
so: a late event or a rebuild after it does not recompute rollups whose raw data is gone."""

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from monitoring.dashboards.tiles import latency_buckets, slo_tiles
from monitoring.dashboards.windows import Window
from monitoring.models import SLO, HourRollup, Rollup
from monitoring.retention.run import apply_retention
from monitoring.slo import outcomes
from monitoring.slo.figures import evaluate_slos, latency_percentiles, series
from tests.events import event
from tracing.ingest.pipeline import ingest_events
from tracing.models import TraceEvent, Transaction

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def releases(start, count, *, every, prefix, acknowledged=lambda i: True):
    """Order releases from `start`, acknowledged 30 s later (every 7th after 2 min: bad)."""
    events = []
    for i in range(count):
        at, corr = start + i * every, f"{prefix}{i}"
        events.append(event("released", correlation_id=corr, at=at, event_id=f"{corr}-r"))
        if acknowledged(i):
            latency = 120 if i % 7 == 0 else 30
            events.append(
                event("acknowledged", correlation_id=corr, source="MES", event_id=f"{corr}-a",
                      at=at + timedelta(seconds=latency))
            )  # fmt: skip
    return events


def load(p100):
    """500 days ago a few releases; then one every 5 hours over the last 60 days."""
    long_ago = NOW - 500 * DAY
    assert ingest_events(releases(long_ago, 3, every=timedelta(hours=1), prefix="OLD"),
                         now=long_ago + DAY).rejected == []  # fmt: skip
    outcomes.refresh(long_ago + DAY)
    recent = releases(NOW - 60 * DAY, 288, every=timedelta(hours=5), prefix="PO",
                      acknowledged=lambda i: i != 10)  # fmt: skip
    assert ingest_events(recent, now=NOW).rejected == []
    for e in TraceEvent.objects.all():  # received as they happened
        TraceEvent.objects.filter(pk=e.pk).update(received_at=e.occurred_at)
    outcomes.refresh(NOW)


def figures(plant):
    """What the SLO evaluation, the API's series and percentiles and the dashboards show."""
    slo = SLO.objects.get(slug="order-release-latency")
    statuses = sorted(
        (s.slo_id, s.plant_id or 0, s.good, s.total, s.attainment, s.error_budget_remaining,
         tuple(sorted(s.burn_rates.items())), s.status)
        for s in evaluate_slos(NOW)
    )  # fmt: skip
    shown = {"statuses": statuses}
    for days in (1, 7, 28):
        window = Window(f"{days}d", NOW - days * DAY, NOW)
        shown[f"buckets-{days}"] = latency_buckets(slo, plant, window)
        shown[f"tiles-{days}"] = [
            (dataclasses.astuple(t)[0].pk, t.points) for t in slo_tiles(plant, window)
        ]
    for days in (28, 60, 700):  # hour rollups are kept two years: 700 days is a kept range
        since = (NOW - days * DAY).replace(minute=0)
        shown[f"series-{days}"] = series(slo, plant_id=plant.pk, since=since, until=NOW)
    shown["percentiles-28"] = latency_percentiles(slo, plant_id=plant.pk, since=NOW - 28 * DAY,
                                                  until=NOW)  # fmt: skip
    return shown


def test_figures_over_kept_ranges_are_identical_before_and_after_a_purge(p100):
    load(p100)
    before = figures(p100)
    old_hours = [p for p in before["series-700"] if p["at"] < (NOW - 400 * DAY).isoformat()]
    assert before["statuses"] and sum(p["total"] for p in old_hours) == 3  # kept in hour rows
    counts = apply_retention(now=NOW)
    assert counts["transactions"] == 3  # the releases of 500 days ago, with their outcomes
    assert counts["minute_rollups"] > 0 and counts["events"] == 6
    assert not Transaction.objects.filter(correlation_id__startswith="OLD").exists()
    assert Rollup.objects.filter(minute__lt=NOW - 36 * DAY).count() == 0
    assert figures(p100) == before


def test_a_late_event_or_a_rebuild_after_a_purge_changes_no_final_figure(p100):
    load(p100)
    apply_retention(now=NOW)
    before, hours = figures(p100), list(HourRollup.objects.order_by("hour").values())
    # PO10, released 60 days ago, never acknowledged (a bad outcome): now it is, very late.
    late = event("acknowledged", correlation_id="PO10", source="MES",
                 at=NOW - 60 * DAY + timedelta(hours=50, seconds=20))  # fmt: skip
    assert ingest_events([late], now=NOW).accepted == 1
    outcomes.refresh(NOW + timedelta(minutes=1))
    assert list(HourRollup.objects.order_by("hour").values()) == hours
    outcomes.rebuild(NOW + timedelta(minutes=2))
    assert figures(p100) == before
