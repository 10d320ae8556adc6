"""Hourly rollups: kept equal to the sum of their minutes, and ranges read exactly from both."""

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from monitoring.dashboards.tiles import latency_buckets
from monitoring.dashboards.windows import Window
from monitoring.models import SLO, HourRollup, Rollup
from monitoring.slo import histogram, outcomes, rollups
from monitoring.slo.figures import latency_percentiles, series
from tests.events import event
from tracing.ingest.pipeline import ingest_events

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def release_slo():
    return SLO.objects.get(slug="order-release-latency")


def releases(count, *, start, every, latency, prefix="R", plant="P100"):
    """`count` order releases `every` apart from `start`, each acknowledged after `latency`(i)."""
    events = []
    for i in range(count):
        at = start + i * every
        corr = f"{prefix}{i}"
        events.append(event("released", correlation_id=corr, at=at, plant=plant))
        events.append(
            event(
                "acknowledged",
                correlation_id=corr,
                at=at + timedelta(seconds=latency(i)),
                plant=plant,
                source="MES",
            )
        )
    return events


def hours_from_minutes():
    """{(slo, plant, hour): (good, total, histogram)} summed from the minute rollups."""
    sums = defaultdict(lambda: [0, 0, {}])
    for row in Rollup.objects.all():
        hour = sums[(row.slo_id, row.plant_id, rollups.floor_hour(row.minute))]
        hour[0] += row.good
        hour[1] += row.total
        histogram.add_all(hour[2], row.histogram)
    return {key: (g, t, h) for key, (g, t, h) in sums.items()}


def stored_hours():
    return {
        (row.slo_id, row.plant_id, row.hour): (row.good, row.total, row.histogram)
        for row in HourRollup.objects.all()
    }


def test_hour_rollups_follow_their_minutes_through_late_corrections(p100, p200):
    start = NOW - timedelta(hours=5, minutes=17)
    ingest_events(
        releases(40, start=start, every=timedelta(minutes=7), latency=lambda i: 5 + i)
        + releases(6, start=start, every=timedelta(minutes=50), latency=lambda i: 3, prefix="Q")
        + releases(5, start=start, every=timedelta(hours=1), latency=lambda i: 2, plant="P200"),
        now=NOW,
    )
    outcomes.refresh(NOW)
    first = stored_hours()
    assert first == hours_from_minutes()
    assert len({hour for _, _, hour in first}) >= 5
    # R3 was acknowledged after 8 s; an earlier acknowledgement (1 s) arrives late: the
    # outcome's latency changes, so its minute's and its hour's histograms change.
    ingest_events(
        [
            event(
                "acknowledged",
                correlation_id="R3",
                at=start + 3 * timedelta(minutes=7) + timedelta(seconds=1),
                source="MES",
                event_id="R3-early",
            )
        ],
        now=NOW,
    )
    outcomes.refresh(NOW + timedelta(minutes=1))
    assert stored_hours() == hours_from_minutes()
    assert stored_hours() != first
    incremental = stored_hours()
    outcomes.rebuild(NOW + timedelta(minutes=1))
    assert stored_hours() == incremental


def test_an_hour_whose_minutes_all_go_away_is_deleted(p100):
    slo = release_slo()
    minute = NOW.replace(minute=30)
    Rollup.objects.create(slo=slo, plant=p100, minute=minute, good=1, total=1, histogram={"5": 1})
    rollups.recompute_hours({(slo.id, p100.id, rollups.floor_hour(minute))})
    assert HourRollup.objects.filter(hour=NOW).count() == 1
    Rollup.objects.all().delete()
    rollups.recompute_hours({(slo.id, p100.id, rollups.floor_hour(minute))})
    assert not HourRollup.objects.exists()


@pytest.fixture
def random_minutes(p100, p200):
    """Three days of random minute rollups for two SLOs and two plants, hours built."""
    rng = random.Random(7)
    slos = [release_slo(), SLO.objects.get(slug="posting-delay")]
    start = NOW - timedelta(days=3)
    rows = []
    for minute in range(0, 3 * 24 * 60, 3):
        for slo in slos:
            for plant in (p100, p200):
                if rng.random() < 0.5:
                    continue
                total = rng.randint(1, 6)
                hist = {}
                for _ in range(total):
                    histogram.add(hist, rng.uniform(0.2, 400))
                rows.append(
                    Rollup(
                        slo=slo,
                        plant=plant,
                        minute=start + timedelta(minutes=minute),
                        good=rng.randint(0, total),
                        total=total,
                        histogram=hist,
                    )
                )
    Rollup.objects.bulk_create(rows)
    rollups.recompute_hours({(r.slo_id, r.plant_id, rollups.floor_hour(r.minute)) for r in rows})
    return slos, rows


def from_minutes(rows, slo_ids, plant_id, since, until):
    picked = [
        r
        for r in rows
        if r.slo_id in slo_ids
        and (plant_id is None or r.plant_id == plant_id)
        and since <= r.minute < until
    ]
    return (
        sum(r.good for r in picked),
        sum(r.total for r in picked),
        histogram.merge(r.histogram for r in picked),
    )


def test_any_range_reads_exactly_what_its_minutes_hold(random_minutes, p100):
    slos, rows = random_minutes
    rng = random.Random(11)
    start = NOW - timedelta(days=3)
    ranges = [
        (start, NOW),  # aligned on hours
        (NOW - timedelta(minutes=40), NOW - timedelta(minutes=10)),  # inside one hour
        (NOW - timedelta(minutes=70), NOW - timedelta(minutes=50)),  # across one boundary
    ]
    for _ in range(25):
        a, b = sorted(rng.sample(range(0, 3 * 24 * 60), 2))
        ranges.append((start + timedelta(minutes=a, seconds=17), start + timedelta(minutes=b)))
    for since, until in ranges:
        for slo_ids, plant_id in (([slos[0].id], p100.id), ([s.id for s in slos], None)):
            found = list(rollups.rows(slo_ids, plant_id=plant_id, since=since, until=until))
            got = (
                sum(r[3] for r in found),
                sum(r[4] for r in found),
                histogram.merge(r[5] for r in found),
            )
            assert got == from_minutes(rows, slo_ids, plant_id, since, until), (since, until)


def test_series_and_percentiles_read_from_hours_match_the_minutes(random_minutes, p100):
    slos, rows = random_minutes
    slo = slos[0]
    since, until = NOW - timedelta(days=2, minutes=23), NOW - timedelta(minutes=5)
    points = series(slo, plant_id=p100.id, since=since, until=until)
    assert sum(p["total"] for p in points) == from_minutes(rows, [slo.id], p100.id, since, until)[1]
    assert len(points) == 49  # 11:37 two days ago to 11:55 today: 49 hours touched
    assert [p["at"] for p in points] == sorted(p["at"] for p in points)
    merged = from_minutes(rows, [slo.id], p100.id, since, until)[2]
    got = latency_percentiles(slo, plant_id=p100.id, since=since, until=until)
    assert got == histogram.percentiles(merged)


def test_the_day_chart_has_one_bucket_per_hour_and_the_week_chart_six_hour_buckets(
    random_minutes, p100
):
    slos, rows = random_minutes
    slo = slos[0]
    now = NOW - timedelta(minutes=23)
    for span, step, most in ((timedelta(hours=24), 1, 25), (timedelta(days=2, hours=23), 6, 13)):
        window = Window("x", now - span, now)
        buckets = latency_buckets(slo, p100, window)
        assert len(buckets) <= most
        starts = [start for start, *_ in buckets]
        assert all(s.minute == 0 and s.hour % step == (starts[0].hour % step) for s in starts)
        total = sum(t for _, t, _, _ in buckets)
        assert total == from_minutes(rows, [slo.id], p100.id, window.since, window.until)[1]
