"""Day rollups: one row per SLO, plant and day in the plant's zone, equal to the hours that start
in that day, so 7- and 28-day figures read about 28 rows instead of 672 and stay exact."""

import importlib
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps as django_apps

from integration_hub.models import Downtime, Plant
from monitoring.dashboards import overview, tiles
from monitoring.dashboards.windows import Window
from monitoring.models import SLO, DayRollup, HourRollup, Outcome, Rollup
from monitoring.retention.run import apply_retention
from monitoring.slo import histogram, outcomes, rollups
from tests.events import event
from tracing.ingest.pipeline import ingest_events

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def release_slo():
    return SLO.objects.get(slug="order-release-latency")


def test_a_day_holds_the_hours_that_start_in_it_across_dst_and_half_hour_zones():
    def span(local, zone):
        start, end = rollups.day_span(local.replace(tzinfo=ZoneInfo(zone)), ZoneInfo(zone))
        return start, (end - start) / timedelta(hours=1)

    # Berlin in November is UTC+1: the day starts at 23:00 UTC the evening before.
    assert span(datetime(2026, 11, 20, 13, 0), "Europe/Berlin") == (
        datetime(2026, 11, 19, 23, 0, tzinfo=UTC),
        24,
    )
    assert span(datetime(2026, 3, 29, 12, 0), "Europe/Berlin")[1] == 23  # clocks go forward
    assert span(datetime(2026, 10, 25, 12, 0), "Europe/Berlin")[1] == 25  # clocks go back
    # Kolkata is UTC+5:30: midnight is 18:30 UTC, so the day's first hour starts at 19:00.
    assert span(datetime(2026, 11, 20, 13, 0), "Asia/Kolkata") == (
        datetime(2026, 11, 19, 19, 0, tzinfo=UTC),
        24,
    )


def releases(count, *, start, every, latency, prefix="R", plant="P100"):
    """`count` order releases `every` apart from `start`, each acknowledged after `latency`(i)."""
    events = []
    for i in range(count):
        at, corr = start + i * every, f"{prefix}{i}"
        events.append(event("released", correlation_id=corr, at=at, plant=plant))
        events.append(event("acknowledged", correlation_id=corr, plant=plant, source="MES",
                            at=at + timedelta(seconds=latency(i))))  # fmt: skip
    return events


def days_from_hours():
    """{(slo, plant, first hour of the plant's day): (good, total, histogram)} from the hours."""
    zones = {p.pk: p.tzinfo for p in Plant.objects.all()}
    sums = defaultdict(lambda: [0, 0, {}])
    for row in HourRollup.objects.all():
        day = sums[(row.slo_id, row.plant_id, rollups.day_span(row.hour, zones[row.plant_id])[0])]
        day[0] += row.good
        day[1] += row.total
        histogram.add_all(day[2], row.histogram)
    return {key: (g, t, h) for key, (g, t, h) in sums.items()}


def stored_days():
    return {
        (row.slo_id, row.plant_id, row.day): (row.good, row.total, row.histogram)
        for row in DayRollup.objects.all()
    }


def test_day_rollups_follow_their_hours_through_late_events_across_local_midnight(p100, p200):
    """Releases every 20 minutes around Berlin's midnight (23:00 UTC) for three days."""
    start = datetime(2026, 11, 19, 20, 10, tzinfo=UTC)
    ingest_events(
        releases(3 * 72, start=start, every=timedelta(minutes=20), latency=lambda i: 5 + i % 90)
        + releases(9, start=start, every=timedelta(hours=7), latency=lambda i: 3, plant="P200"),
        now=NOW,
    )
    outcomes.refresh(NOW)
    first = stored_days()
    assert first == days_from_hours()
    berlin_days = {day for _, plant, day in first if plant == p100.pk}
    assert datetime(2026, 11, 20, 23, 0, tzinfo=UTC) in berlin_days  # 21 Nov, 00:00 in Berlin
    # R10 (released 23:30 UTC on the 19th: the 20th in Berlin) was acknowledged after 15 s; an
    # acknowledgement after 1 s arrives late: only that Berlin day changes.
    late = event("acknowledged", correlation_id="R10", source="MES", event_id="R10-early",
                 at=start + 10 * timedelta(minutes=20) + timedelta(seconds=1))  # fmt: skip
    ingest_events([late], now=NOW)
    outcomes.refresh(NOW + timedelta(minutes=1))
    now_stored = stored_days()
    assert now_stored == days_from_hours()
    changed = {k for k in first if now_stored[k] != first[k]}
    assert changed == {(release_slo().pk, p100.pk, datetime(2026, 11, 19, 23, 0, tzinfo=UTC))}
    incremental = stored_days()
    outcomes.rebuild(NOW + timedelta(minutes=1))
    assert stored_days() == incremental


def test_a_day_whose_hours_all_go_away_is_deleted(p100):
    slo = release_slo()
    hour = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    Rollup.objects.create(slo=slo, plant=p100, minute=hour, good=1, total=1, histogram={"5": 1})
    rollups.recompute_hours({(slo.pk, p100.pk, hour)})
    assert DayRollup.objects.get().day == datetime(2026, 11, 19, 23, 0, tzinfo=UTC)
    Rollup.objects.all().delete()
    rollups.recompute_hours({(slo.pk, p100.pk, hour)})
    assert not DayRollup.objects.exists()


@pytest.fixture
def random_minutes(p100, p200):
    """Nine days of random minute rollups for two SLOs and two plants, hours and days built."""
    rng = random.Random(7)
    slos = [release_slo(), SLO.objects.get(slug="posting-delay")]
    start = NOW - timedelta(days=9)
    rows = []
    for minute in range(0, 9 * 24 * 60, 7):
        for slo in slos:
            for plant in (p100, p200):
                if rng.random() < 0.5:
                    continue
                total = rng.randint(1, 6)
                hist = {}
                for _ in range(total):
                    histogram.add(hist, rng.uniform(0.2, 400))
                at = start + timedelta(minutes=minute)
                rows.append(Rollup(slo=slo, plant=plant, minute=at, good=rng.randint(0, total),
                                   total=total, histogram=hist))  # fmt: skip
    Rollup.objects.bulk_create(rows)
    rollups.recompute_hours({(r.slo_id, r.plant_id, rollups.floor_hour(r.minute)) for r in rows})
    return slos, rows


def from_minutes(rows, slo_ids, plant_id, since, until):
    picked = [
        r
        for r in rows
        if r.slo_id in slo_ids and r.plant_id == plant_id and since <= r.minute < until
    ]
    return (
        sum(r.good for r in picked),
        sum(r.total for r in picked),
        histogram.merge(r.histogram for r in picked),
    )


def read(slo_ids, plant, since, until):
    found = list(rollups.rows(slo_ids, plant_id=plant.pk, since=since, until=until, tz=BERLIN))
    summed = (
        sum(r[3] for r in found),
        sum(r[4] for r in found),
        histogram.merge(r[5] for r in found),
    )
    return summed, found


def test_any_range_read_with_whole_days_is_what_its_minutes_hold(random_minutes, p100):
    slos, rows = random_minutes
    rng = random.Random(11)
    start = NOW - timedelta(days=9)
    ranges = [(start, NOW), (NOW - timedelta(days=7), NOW)]
    for _ in range(20):
        a, b = sorted(rng.sample(range(0, 9 * 24 * 60), 2))
        ranges.append((start + timedelta(minutes=a, seconds=17), start + timedelta(minutes=b)))
    ids = [s.pk for s in slos]
    for since, until in ranges:
        got, _ = read(ids, p100, since, until)
        assert got == from_minutes(rows, ids, p100.pk, since, until), (since, until)
    # The week from 13:00 in Berlin reads six whole Berlin days as one row each per SLO, and
    # the 11 and 13 hours at its edges: at most 60 rows, where hours alone would be 336.
    _, found = read(ids, p100, NOW - timedelta(days=7), NOW)
    assert len(found) <= 2 * (6 + 11 + 13)


def test_days_built_for_another_zone_are_not_used(random_minutes, p100):
    """A plant moved to New York: its old Berlin days match none of its new days; the figures
    come from the hours until the days are rebuilt."""
    slos, rows = random_minutes
    ids = [s.pk for s in slos]
    since = NOW - timedelta(days=8, minutes=13)
    new_york = ZoneInfo("America/New_York")
    DayRollup.objects.update(total=0)  # were they read, the total would drop
    found = list(rollups.rows(ids, plant_id=p100.pk, since=since, until=NOW, tz=new_york))
    assert sum(r[4] for r in found) == from_minutes(rows, ids, p100.pk, since, NOW)[1]
    rollups.recompute_days({(s, p100.pk, r.hour) for s in ids for r in HourRollup.objects.all()})
    # A day row whose end no longer matches the zone's day is not used either.
    row = DayRollup.objects.filter(plant=p100, day=datetime(2026, 11, 18, 23, 0, tzinfo=UTC))[0]
    DayRollup.objects.filter(pk=row.pk).update(next_day=row.next_day + timedelta(hours=1), total=0)
    assert read(ids, p100, since, NOW)[0] == from_minutes(rows, ids, p100.pk, since, NOW)


def test_28_day_dashboard_figures_equal_the_raw_outcomes(p100):
    """Tiles, the release chart, the flow's p95 and the SLO histogram over 28 days, computed
    from the outcomes one by one (each in the Berlin day of its minute)."""
    start = NOW - timedelta(days=27, hours=5, minutes=3)
    ingest_events(releases(28 * 9, start=start, every=timedelta(hours=2, minutes=40),
                           latency=lambda i: 4 + (i * 37) % 140), now=NOW)  # fmt: skip
    outcomes.refresh(NOW)
    slo = release_slo()
    window = Window("28d", NOW - timedelta(days=28), NOW)
    raw = defaultdict(lambda: [0, 0, {}])
    for o in Outcome.objects.filter(slo=slo, pending=False, minute__gte=window.since):
        local = o.minute.astimezone(BERLIN).replace(hour=0, minute=0, second=0, microsecond=0)
        day = raw[local]
        day[0] += 1
        day[1] += o.good
        if o.latency is not None:
            histogram.add(day[2], o.latency)
    expected = [(d, t, g, histogram.percentiles(h)) for d, (t, g, h) in sorted(raw.items())]
    assert tiles.latency_buckets(slo, p100, window) == expected
    points = tiles.attainment_points(p100, window, [slo.pk])[slo.pk]
    assert [(d, t) for d, _, t in points] == [(d, t) for d, t, *_ in expected]
    assert [a for _, a, _ in points] == [g / t for _, t, g, _ in expected]
    merged = histogram.merge(h for _, _, h in raw.values())
    assert tiles.slo_histogram(slo, p100, window) == (merged, histogram.percentiles(merged))
    rows = {r.flow.code: r for r in overview.flow_rows(p100, window, NOW)}
    assert rows["order_release"].p95 == histogram.percentile(merged, 0.95)
    history = tiles.slo_history(slo, p100, window)
    assert [(p["at"], p["total"], p["good"]) for p in history] == [
        (d.isoformat(), t, g) for d, t, g, _ in expected
    ]
    assert DayRollup.objects.filter(slo=slo, plant=p100).count() >= 27


def test_a_downtime_recomputed_later_corrects_the_days(p100):
    """Released 10 s before a two-hour stop, acknowledged 20 s after it: bad by the wall clock,
    good (30 s) once the downtime is known, and the Berlin day says so."""
    released = NOW - timedelta(hours=3, seconds=10)
    ingest_events(releases(1, start=released, every=timedelta(0), latency=lambda i: 7230), now=NOW)
    outcomes.refresh(NOW)
    day = DayRollup.objects.get(slo=release_slo(), plant=p100)
    assert (day.good, day.total) == (0, 1)
    Downtime.objects.create(
        plant=p100, start=NOW - timedelta(hours=3), end=NOW - timedelta(hours=1)
    )
    outcomes.recompute_span(p100.pk, NOW - timedelta(hours=3), NOW - timedelta(hours=1), NOW)
    day.refresh_from_db()
    thirty = {}
    histogram.add(thirty, 30)
    assert (day.good, day.total, day.histogram) == (1, 1, thirty)
    assert stored_days() == days_from_hours()


def test_hour_rollups_take_their_days_along_when_they_expire(p100):
    slo = release_slo()
    for days in (729, 731):
        hour = rollups.floor_hour(NOW - timedelta(days=days))
        Rollup.objects.create(slo=slo, plant=p100, minute=hour, good=1, total=1)
        rollups.recompute_hours({(slo.pk, p100.pk, hour)})
    assert DayRollup.objects.count() == 2
    counts = apply_retention(now=NOW)
    assert counts["hour_rollups"] == 1
    kept = DayRollup.objects.get()
    assert kept.day == rollups.day_span(NOW - timedelta(days=729), BERLIN)[0]
    assert stored_days() == days_from_hours()


def test_the_migration_builds_the_days_of_the_hours_already_stored(random_minutes):
    build_days = importlib.import_module("monitoring.migrations.0007_day_rollups").build_days
    built = stored_days()
    DayRollup.objects.all().delete()
    build_days(django_apps, None)
    assert stored_days() == built == days_from_hours()
