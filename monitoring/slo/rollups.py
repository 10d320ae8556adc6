"""Reading rollups over any time range, and keeping the hour and day rollups in step with the
minutes.

A range is read exactly: whole hours from HourRollup, the partial hours at its edges from the
minute Rollup rows, and, given the plant's zone, the whole local days inside it from DayRollup.
A day costs about 24 rows per SLO and plant instead of 1,440, and 28 days about 28 rows plus
the hours and minutes at the edges, in at most three queries whatever the range.
"""

from bisect import bisect_right
from collections import defaultdict
from datetime import UTC, timedelta

from django.db import transaction
from django.db.models import Q

from integration_hub.models import Plant
from monitoring.models import DayRollup, HourRollup, Rollup, Watermark
from monitoring.slo import histogram

HOUR = timedelta(hours=1)


DAY = timedelta(days=1)


COUNTS = ["good", "total", "histogram"]


HOURS_PER_QUERY = 200


def floor_hour(moment):
    return moment.replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment):
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


def day_span(moment, tz):
    """The day in zone `tz` that holds `moment`, as the hours that start in it: (its first
    hour, the next day's first hour), in UTC. Daily charts put an hour in the day its start
    falls in, so a day row holds exactly the hours of one daily bucket (DST days hold 23 or
    25; in a zone half an hour off UTC the hour across midnight counts for the day it starts
    in)."""
    midnight = moment.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    following = midnight + DAY  # wall-clock arithmetic: the next local midnight
    return ceil_hour(midnight.astimezone(UTC)), ceil_hour(following.astimezone(UTC))


def day_spans(first, last, tz):
    """The days in zone `tz` whose hours all lie in [first, last) (whole hours), in order;
    none at the ends of the calendar, where a local day has no UTC start (read as hours)."""
    spans = []
    try:
        start, end = day_span(first, tz)
        if start < first:
            start, end = day_span(end, tz)
        while end <= last:
            spans.append((start, end))
            start, end = day_span(end, tz)
    except OverflowError:
        return []
    return spans


def rows(slo_ids, *, plant_id=None, since, until, with_histogram=True, whole_hours=True, tz=None):
    """(slo_id, plant_id, start, good, total, histogram or None) covering [since, until).

    `start` is the row's minute (edges), hour or, given one plant and its zone `tz`, the first
    hour of a whole local day inside the range; rows come unordered. With whole_hours=False
    every row is a minute (for charts with buckets shorter than an hour); with `tz`, callers
    must not need finer than a day for the hours inside it.
    """
    fields = ["slo_id", "plant_id", "good", "total"]
    if with_histogram:
        fields.append("histogram")
    first, last = ceil_hour(since), floor_hour(until)
    scope = {"slo_id__in": list(slo_ids)}
    if plant_id is not None:
        scope["plant_id"] = plant_id
    found = []
    if first >= last or not whole_hours:  # minutes only
        edges = Q(minute__gte=since, minute__lt=until)
        hours = None
    else:
        edges = Q(minute__gte=since, minute__lt=first) | Q(minute__gte=last, minute__lt=until)
        hour_ranges = Q(hour__gte=first, hour__lt=last)
        if tz is not None and plant_id is not None:
            found, hour_ranges = _days(slo_ids, scope, first, last, tz, fields)
        hours = HourRollup.objects.filter(hour_ranges, **scope)
    minutes = Rollup.objects.filter(edges, **scope)
    sources = [(minutes, "minute")] + ([(hours, "hour")] if hours is not None else [])
    for queryset, start in sources:
        # At most 24 hour rows a day and 120 minute rows per SLO and plant: one fetch each.
        found += queryset.values_list(*fields, start)
    for row in found:
        slo_id, plant, good, total = row[:4]
        yield slo_id, plant, row[-1], good, total, (row[4] if with_histogram else None)


def _days(slo_ids, scope, first, last, tz, fields):
    """The day rows of the whole local days in [first, last) that match the plant's zone, and
    a filter for the hours they leave uncovered (per SLO: a day without data, or with a row
    built for another zone, is read from its hours)."""
    spans = day_spans(first, last, tz)
    if not spans:
        return [], Q(hour__gte=first, hour__lt=last)
    wanted = dict(spans)
    days = DayRollup.objects.filter(**scope, day__gte=spans[0][0], day__lt=spans[-1][1])
    found, covered = [], defaultdict(set)
    for row in days.values_list(*fields, "next_day", "day"):
        if wanted.get(row[-1]) == row[-2]:
            found.append(row[:-2] + row[-1:])
            covered[row[0]].add(row[-1])
    by_gaps = defaultdict(list)  # SLOs that leave the same hours uncovered share one filter
    for slo_id in slo_ids:
        gaps, start = [], first
        for day, next_day in spans:
            if day in covered[slo_id]:
                if start < day:
                    gaps.append((start, day))
                start = next_day
        if start < last:
            gaps.append((start, last))
        by_gaps[tuple(gaps)].append(slo_id)
    nothing = Q(hour__gte=last, hour__lt=last)  # still one query when days cover every hour
    uncovered = nothing
    for gaps, ids in by_gaps.items():
        ranges = nothing
        for start, end in gaps:
            ranges |= Q(hour__gte=start, hour__lt=end)
        uncovered |= Q(slo_id__in=ids) & ranges
    return found, uncovered


def merged_histogram(slo_ids, *, plant_id=None, since, until, tz=None):
    """The sum of the latency histograms of the range."""
    return histogram.merge(
        hist for *_, hist in rows(slo_ids, plant_id=plant_id, since=since, until=until, tz=tz)
    )


# ── Final rollups: what retention has purged underneath ─────────────────────────────────────

FINAL = "rollups-final:"


def final_lines():
    """{plant id: hour}: that plant's rollups before it are final. Retention has purged (or
    may purge) their minute rows or the outcomes behind them, so recomputing them would lose
    counts: they are kept as they are, and figures over kept ranges never change."""
    rows = Watermark.objects.filter(name__startswith=FINAL).values_list("name", "at")
    return {int(name.removeprefix(FINAL)): at for name, at in rows}


def mark_final(lines):
    """Move plants' final lines forward (never back) to the given hours."""
    current = final_lines()
    for plant_id, at in lines.items():
        if plant_id not in current or at > current[plant_id]:
            Watermark.objects.update_or_create(name=f"{FINAL}{plant_id}", defaults={"at": at})


def before_final(lines, period, *, inclusive=False):
    """A filter for rollup rows that are final: `period` (minute, hour, or a day's next_day
    with `inclusive`) before their plant's line."""
    final = Q(pk__in=[])
    lookup = f"{period}__{'lte' if inclusive else 'lt'}"
    for plant_id, at in lines.items():
        final |= Q(plant_id=plant_id, **{lookup: at})
    return final


# ── Keeping the hours in step ──────────────────────────────────────────────────────────────


def recompute_hours(touched):
    """Rebuild the HourRollup rows of the given (slo_id, plant_id, hour) from their minutes,
    then the DayRollup rows that hold them."""
    groups = defaultdict(set)
    for slo_id, plant_id, hour in touched:
        groups[(slo_id, plant_id)].add(hour)
    for (slo_id, plant_id), hours in groups.items():
        for run in _runs(sorted(hours)):
            _recompute_run(slo_id, plant_id, run)
    recompute_days(touched)


def _runs(hours):
    """Split sorted hours into runs of nearby hours (one range query each)."""
    run = []
    for hour in hours:
        if run and (hour - run[0] >= HOURS_PER_QUERY * HOUR or hour - run[-1] > 6 * HOUR):
            yield run
            run = []
        run.append(hour)
    if run:
        yield run


def _recompute_run(slo_id, plant_id, hours):
    sums = {h: HourRollup(slo_id=slo_id, plant_id=plant_id, hour=h, histogram={}) for h in hours}
    minutes = Rollup.objects.filter(
        slo_id=slo_id, plant_id=plant_id, minute__gte=hours[0], minute__lt=hours[-1] + HOUR
    ).values_list("minute", "good", "total", "histogram")
    for minute, good, total, hist in minutes.iterator(chunk_size=5000):
        row = sums.get(floor_hour(minute))
        if row is None:  # a minute of an hour between two touched ones
            continue
        row.good += good
        row.total += total
        histogram.add_all(row.histogram, hist)
    store(HourRollup, "hour", slo_id, plant_id, sums)


def recompute_days(touched):
    """Rebuild the DayRollup rows of the plant-local days holding the given (slo_id,
    plant_id, hour) from their hours. Hour rows are never purged before their days go with
    them (retention), so a day is recomputed exactly even when its minutes are gone."""
    zones = {p.pk: p.tzinfo for p in Plant.objects.filter(pk__in={p for _, p, _ in touched})}
    groups = defaultdict(set)
    for slo_id, plant_id, hour in touched:
        groups[(slo_id, plant_id)].add(day_span(hour, zones[plant_id]))
    for (slo_id, plant_id), spans in groups.items():
        spans = sorted(spans)
        while spans:  # one query per run of up to a week of days
            run = [s for s in spans if s[0] < spans[0][0] + 7 * DAY]
            spans = spans[len(run) :]
            _recompute_days(slo_id, plant_id, run)


def _recompute_days(slo_id, plant_id, spans):
    sums = {
        day: DayRollup(slo_id=slo_id, plant_id=plant_id, day=day, next_day=end, histogram={})
        for day, end in spans
    }
    starts = sorted(sums)
    hours = HourRollup.objects.filter(
        slo_id=slo_id, plant_id=plant_id, hour__gte=spans[0][0], hour__lt=spans[-1][1]
    ).values_list("hour", "good", "total", "histogram")
    for hour, good, total, hist in hours.iterator(chunk_size=5000):
        day = starts[bisect_right(starts, hour) - 1]
        row = sums[day]
        if hour >= row.next_day:  # an hour between two touched days
            continue
        row.good += good
        row.total += total
        histogram.add_all(row.histogram, hist)
    store(DayRollup, "day", slo_id, plant_id, sums, fields=[*COUNTS, "next_day"])


def store(model, period, slo_id, plant_id, sums, fields=COUNTS):
    """Write recomputed rollup rows ({period start: row}) of one SLO and plant: upsert those
    that count something, delete those left empty."""
    keep = [row for row in sums.values() if row.total]
    empty = [start for start, row in sums.items() if not row.total]
    with transaction.atomic():
        if empty:
            model.objects.filter(
                slo_id=slo_id, plant_id=plant_id, **{f"{period}__in": empty}
            ).delete()
        model.objects.bulk_create(
            keep,
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["slo", "plant", period],
            update_fields=fields,
        )
