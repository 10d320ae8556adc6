"""Reading rollups over any time range, and keeping the hourly rollups in step with the minutes.

A range is read exactly: whole hours from HourRollup, the partial hours at its edges from the
minute Rollup rows. A day costs about 24 rows per SLO and plant instead of 1,440, in two
queries whatever the range.
"""

from collections import defaultdict
from datetime import timedelta

from django.db import transaction
from django.db.models import Q

from monitoring.models import HourRollup, Rollup, Watermark
from monitoring.slo import histogram

HOUR = timedelta(hours=1)


HOURS_PER_QUERY = 200


def floor_hour(moment):
    return moment.replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment):
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


def rows(slo_ids, *, plant_id=None, since, until, with_histogram=True, whole_hours=True):
    """(slo_id, plant_id, start, good, total, histogram or None) covering [since, until).

    `start` is the row's minute (edges) or hour (whole hours); rows come unordered. With
    whole_hours=False every row is a minute (for charts with buckets shorter than an hour).
    """
    fields = ["slo_id", "plant_id", "good", "total"]
    if with_histogram:
        fields.append("histogram")
    first, last = ceil_hour(since), floor_hour(until)
    scope = {"slo_id__in": list(slo_ids)}
    if plant_id is not None:
        scope["plant_id"] = plant_id
    if first >= last or not whole_hours:  # minutes only
        edges = Q(minute__gte=since, minute__lt=until)
        hours = None
    else:
        edges = Q(minute__gte=since, minute__lt=first) | Q(minute__gte=last, minute__lt=until)
        hours = HourRollup.objects.filter(**scope, hour__gte=first, hour__lt=last)
    minutes = Rollup.objects.filter(edges, **scope)
    sources = [(minutes, "minute")] + ([(hours, "hour")] if hours is not None else [])
    for queryset, start in sources:
        # At most 24 hour rows a day and 120 minute rows per SLO and plant: one fetch each.
        for row in queryset.values_list(*fields, start):
            slo_id, plant, good, total = row[:4]
            yield slo_id, plant, row[-1], good, total, (row[4] if with_histogram else None)


def merged_histogram(slo_ids, *, plant_id=None, since, until):
    """The sum of the latency histograms of the range."""
    return histogram.merge(
        hist for *_, hist in rows(slo_ids, plant_id=plant_id, since=since, until=until)
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


def before_final(lines, period):
    """A filter for rollup rows (`period`: minute or hour) that are final."""
    final = Q(pk__in=[])
    for plant_id, at in lines.items():
        final |= Q(plant_id=plant_id, **{f"{period}__lt": at})
    return final


# ── Keeping the hours in step ──────────────────────────────────────────────────────────────


def recompute_hours(touched):
    """Rebuild the HourRollup rows of the given (slo_id, plant_id, hour) from their minutes."""
    groups = defaultdict(set)
    for slo_id, plant_id, hour in touched:
        groups[(slo_id, plant_id)].add(hour)
    for (slo_id, plant_id), hours in groups.items():
        for run in _runs(sorted(hours)):
            _recompute_run(slo_id, plant_id, run)


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


def store(model, period, slo_id, plant_id, sums):
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
            update_fields=["good", "total", "histogram"],
        )
