"""SLO figures for dashboards: tiles, attainment, latency buckets and the SLO page."""

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import F, Q
from django.http import Http404

from monitoring.dashboards.windows import DAY, HOUR
from monitoring.models import SLO, Outcome, SLOStatus
from monitoring.slo import histogram, rollups
from monitoring.slo.figures import point, series

# ── SLO tiles ──────────────────────────────────────────────────────────────────────────────

SEVERITY = {"breaching": 3, "warning": 2, "ok": 1, "no_data": 0}


STATUS_LABELS = {"breaching": "Breaching", "warning": "Warning", "ok": "OK", "no_data": "No data"}


def slos_for_plant(plant):
    """Enabled SLOs that measure this plant (global ones and its own), in definition order."""
    return list(
        SLO.objects.filter(enabled=True)
        .filter(Q(plant__isnull=True) | Q(plant=plant))
        .select_related("flow")
        .order_by("id")
    )


@dataclass
class Tile:
    slo: SLO
    status: SLOStatus | None
    points: list = field(default_factory=list)  # [(bucket start, attainment or None, total)]

    @property
    def state(self):
        if self.status is None or not self.status.has_figures:
            return "no_data"
        return self.status.status

    @property
    def why(self):
        """The status reason without its leading status word ("the error budget … is spent.")."""
        reason = self.status.reason if self.status else ""
        return reason.split(": ", 1)[1] if ": " in reason else reason

    @property
    def state_label(self):
        return STATUS_LABELS[self.state]

    @property
    def budget_left(self):
        """Share of the error budget left, clamped at 0 (an overspent budget reads as 0 %)."""
        if self.status is None or not self.status.total:
            return None
        return max(0.0, self.status.error_budget_remaining)

    @property
    def budget_overspent(self):
        return self.status is not None and self.status.error_budget_remaining < 0

    @property
    def burn_1h(self):
        return (self.status.burn_rates or {}).get("1h") if self.status else None


def slo_tiles(plant, window, slos=None):
    """One tile per SLO of the plant: its status snapshot and attainment per chart bucket."""
    slos = slos if slos is not None else slos_for_plant(plant)
    statuses = {s.slo_id: s for s in SLOStatus.objects.filter(plant=plant)}
    points = attainment_points(plant, window, [s.id for s in slos])
    return [Tile(slo, statuses.get(slo.id), points.get(slo.id, [])) for slo in slos]


def attainment_points(plant, window, slo_ids):
    """{slo_id: [(bucket, attainment, total)]} over the window, from the rollups."""
    if not slo_ids:
        return {}
    grouped = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    bucket_of = window.bucketer(plant.tzinfo)
    for slo_id, _, start, good, total, _ in window_rows(slo_ids, plant, window, histograms=False):
        bucket = grouped[slo_id][bucket_of(start)]
        bucket[0] += good
        bucket[1] += total
    return {
        slo_id: [(b, (g / t if t else None), t) for b, (g, t) in sorted(buckets.items())]
        for slo_id, buckets in grouped.items()
    }


def window_rows(slo_ids, plant, window, *, histograms=True):
    """(slo_id, plant_id, start, good, total, histogram) of the plant over the window: minute
    rows when a chart bucket is shorter than an hour (at most 180 per SLO), else whole hours
    plus the minutes at the edges, and whole days of the plant when a bucket is a day."""
    return rollups.rows(
        slo_ids,
        plant_id=plant.id,
        since=window.since,
        until=window.until,
        with_histogram=histograms,
        whole_hours=window.step >= HOUR,
        tz=plant.tzinfo if window.step >= DAY else None,
    )


def worst(states):
    """The most severe of some tile states ('no_data' when there are none)."""
    return max(states, key=SEVERITY.__getitem__, default="no_data")


# ── Order release latency chart ────────────────────────────────────────────────────────────

RELEASE_FLOW = "order_release"


def release_slo(slos):
    """The latency SLO of the order release flow, if one is defined."""
    return next(
        (s for s in slos if s.kind == SLO.Kind.LATENCY and s.flow and s.flow.code == RELEASE_FLOW),
        None,
    )


def latency_buckets(slo, plant, window):
    """[(bucket start, total, good, {p50, p90, p95, p99})] over the window, oldest first.

    Sums the rollup histograms per chart bucket (hour rows, minutes only at the edges).
    """
    buckets, bucket_of = {}, window.bucketer(plant.tzinfo)
    for _, _, start, good, total, hist in window_rows([slo.id], plant, window):
        bucket = buckets.setdefault(bucket_of(start), [0, 0, {}])
        bucket[0] += total
        bucket[1] += good
        histogram.add_all(bucket[2], hist)
    return [
        (start, total, good, histogram.percentiles(merged))
        for start, (total, good, merged) in sorted(buckets.items())
    ]


# ── One SLO ────────────────────────────────────────────────────────────────────────────────

WORST_SHOWN = 20


def slo_for_plant(plant, slug):
    slo = next((s for s in slos_for_plant(plant) if s.slug == slug), None)
    if slo is None:
        raise Http404(f"No SLO {slug!r} measures plant {plant.code}.")
    return slo


def slo_history(slo, plant, window):
    """Attainment and burn rate per hour over the window (monitoring.slo.series), or per day
    in the plant's zone when the range's charts go by day (from the day rollups)."""
    if window.step < DAY:
        return series(slo, plant_id=plant.id, since=window.since, until=window.until)
    days, bucket_of = defaultdict(lambda: [0, 0]), window.bucketer(plant.tzinfo)
    for _, _, start, good, total, _ in window_rows([slo.id], plant, window, histograms=False):
        day = days[bucket_of(start)]
        day[0] += good
        day[1] += total
    return [point(slo, day, good, total) for day, (good, total) in sorted(days.items())]


def slo_histogram(slo, plant, window):
    """The summed latency histogram of the window and its percentiles."""
    merged = rollups.merged_histogram(
        [slo.id], plant_id=plant.id, since=window.since, until=window.until, tz=plant.tzinfo
    )
    return merged, histogram.percentiles(merged)


def worst_outcomes(slo, plant, window, limit=WORST_SHOWN):
    """The bad outcomes of the window: never finished first, then slowest, then latest."""
    return list(
        Outcome.objects.filter(
            slo=slo,
            plant=plant,
            minute__gte=window.since,
            minute__lt=window.until,
            good=False,
            pending=False,
        )
        .select_related("transaction__flow", "dead_letter", "exception")
        .order_by(F("latency").desc(nulls_first=True), "-at")[:limit]
    )
