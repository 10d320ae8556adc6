"""Reads behind the plant dashboards: aggregate queries only, a fixed number per page.

Every function here costs the same number of queries whatever the data volume: counts come
from grouped aggregates over indexed columns, latency from the SLO rollups, never from a query
per row. Views and the benchmark (tests/bench/dashboard.py) share these functions.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, Min, OuterRef, Q, Subquery
from django.http import Http404
from django.utils import timezone

from integration_hub.models import DeadLetter, DeadLetterState, Flow, Plant
from monitoring import histogram, rollups
from monitoring.models import SLO, Outcome, SLOStatus
from monitoring.slo import series
from tracing.models import Transaction, TransactionState

# ── Access ─────────────────────────────────────────────────────────────────────────────────


def plant_for_user(user, code):
    """The plant with this code if the person may see it: 404 if unknown, 403 if not theirs."""
    plant = Plant.objects.filter(code=code).first()
    if plant is None:
        raise Http404(f"No plant {code!r} is registered.")
    if not Plant.objects.for_user(user).filter(pk=plant.pk).exists():
        raise PermissionDenied(f"You are not assigned to plant {plant.code}.")
    return plant


# ── Time ranges ────────────────────────────────────────────────────────────────────────────

RANGES = {
    "1h": ("1 hour", timedelta(hours=1)),
    "24h": ("24 hours", timedelta(hours=24)),
    "7d": ("7 days", timedelta(days=7)),
    "28d": ("28 days", timedelta(days=28)),
}
DEFAULT_RANGE = "24h"
HOUR = timedelta(hours=1)
MAX_CUSTOM = timedelta(days=90)


@dataclass(frozen=True)
class Window:
    """The time range a page shows: one of RANGES, or custom from/to (in the plant's zone)."""

    key: str
    since: datetime
    until: datetime
    custom_from: str = ""
    custom_to: str = ""

    @property
    def span(self):
        return self.until - self.since

    @property
    def label(self):
        if self.key in RANGES:
            return f"last {RANGES[self.key][0]}"
        return "custom range"

    @property
    def step(self):
        """Width of one chart bucket: about 12–170 points whatever the range."""
        span = self.span
        if span <= timedelta(hours=3):
            return timedelta(minutes=5)
        if span <= timedelta(days=2):
            return timedelta(hours=1)
        if span <= timedelta(days=8):
            return timedelta(hours=6)
        return timedelta(days=1)

    def bucketer(self, tz):
        """A function from a moment to the start of the chart bucket that holds it: local
        midnight for daily buckets, else counted in steps from the start of the range (from
        its hour when the step is hours, so that an hourly rollup falls in one bucket).
        Remembers what it computed: rollup rows of many SLOs share their starts."""
        step, seen = self.step, {}
        origin = self.since if step < HOUR else rollups.floor_hour(self.since)

        def bucket(moment):
            start = seen.get(moment)
            if start is None:
                if step >= timedelta(days=1):
                    local = moment.astimezone(tz)
                    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
                else:
                    start = origin + ((moment - origin) // step) * step
                seen[moment] = start
            return start

        return bucket

    @property
    def query(self):
        """The query-string parameters that select this window (for links that keep it)."""
        if self.key == "custom":
            return {"range": "custom", "from": self.custom_from, "to": self.custom_to}
        return {"range": self.key}


def parse_window(params, tz, now=None):
    """(Window, error or None) from ?range=1h|24h|7d|28d|custom&from=&to= (plant-local times)."""
    now = now or timezone.now()
    key = params.get("range") or DEFAULT_RANGE
    if key in RANGES:
        return Window(key, now - RANGES[key][1], now), None
    if key != "custom":
        choices = ", ".join([*RANGES, "custom"])
        return default_window(now), f"Unknown range {key!r}; choose one of {choices}."
    raw_from, raw_to = (params.get("from") or "").strip(), (params.get("to") or "").strip()
    try:
        since = _local_time(raw_from, tz) if raw_from else None
        until = _local_time(raw_to, tz) if raw_to else now
    except ValueError:
        return default_window(now), "Times look like 2026-11-20T06:00 (in the plant's zone)."
    if since is None:
        return default_window(now), "A custom range needs a start time."
    until = min(until, now)
    if since >= until:
        return default_window(now), "The start must be before the end (and before now)."
    if until - since > MAX_CUSTOM:
        return default_window(now), "A custom range may span at most 90 days."
    return Window("custom", since, until, raw_from, raw_to), None


def default_window(now):
    return Window(DEFAULT_RANGE, now - RANGES[DEFAULT_RANGE][1], now)


def _local_time(value, tz):
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def start_of_day(now, tz):
    """Midnight today in the plant's zone, as an aware time."""
    local = now.astimezone(tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


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
        if self.status is None or not self.status.total:
            return "no_data"
        return self.status.status

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
    plus the minutes at the edges."""
    return rollups.rows(
        slo_ids,
        plant_id=plant.id,
        since=window.since,
        until=window.until,
        with_histogram=histograms,
        whole_hours=window.step >= HOUR,
    )


def worst(states):
    """The most severe of some tile states ('no_data' when there are none)."""
    return max(states, key=SEVERITY.__getitem__, default="no_data")


# ── Flows ──────────────────────────────────────────────────────────────────────────────────


@dataclass
class FlowRow:
    flow: Flow
    in_flight: int = 0
    completed_today: int = 0
    failed: int = 0
    stuck: int = 0
    oldest_stuck_since: datetime | None = None
    oldest_stuck_id: str | None = None
    p95: float | None = None
    latency_slo: SLO | None = None

    @property
    def has_activity(self):
        return any((self.in_flight, self.completed_today, self.failed, self.stuck))


def _stuck_q(now):
    return Q(state=TransactionState.STUCK) | Q(state=TransactionState.IN_FLIGHT, stuck_at__lte=now)


def flow_rows(plant, window, now, slos=None):
    """Per flow of the plant: in flight, completed today, failed in the window, stuck, the
    oldest stuck transaction, and p95 latency (from the flow's latency SLO, if it has one).

    Three grouped counts over indexed columns, one subquery per flow inside one query for the
    oldest stuck transaction, and one rollup read for all latency SLOs: a fixed number of
    queries.
    """
    stuck = _stuck_q(now)
    oldest = (
        Transaction.objects.filter(plant=plant, flow=OuterRef("pk"))
        .filter(stuck)
        .order_by("first_seen", "id")
    )
    flows = list(
        Flow.objects.annotate(
            oldest_stuck_id=Subquery(oldest.values("correlation_id")[:1]),
        ).order_by("position", "code")
    )
    rows = {f.id: FlowRow(flow=f, oldest_stuck_id=f.oldest_stuck_id) for f in flows}
    open_counts = (
        Transaction.objects.filter(
            plant=plant, state__in=[TransactionState.IN_FLIGHT, TransactionState.STUCK]
        )
        .values("flow_id")
        .annotate(
            in_flight=Count("id", filter=Q(state=TransactionState.IN_FLIGHT, stuck_at__gt=now)),
            stuck=Count("id", filter=stuck),
            oldest=Min("first_seen", filter=stuck),
        )
        .order_by()
    )
    for r in open_counts:
        row = rows[r["flow_id"]]
        row.in_flight, row.stuck, row.oldest_stuck_since = r["in_flight"], r["stuck"], r["oldest"]
    today = start_of_day(now, plant.tzinfo)
    # A transaction completed today was last seen today: the (plant, last_seen) index bounds it.
    completed = (
        Transaction.objects.filter(
            plant=plant,
            last_seen__gte=today,
            state=TransactionState.COMPLETED,
            completed_at__gte=today,
        )
        .values("flow_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    for r in completed:
        rows[r["flow_id"]].completed_today = r["n"]
    # The same filters the search page applies for state=failed&from=…&to=…
    failed = (
        Transaction.objects.filter(
            plant=plant,
            state=TransactionState.FAILED,
            last_seen__gte=window.since,
            first_seen__lte=window.until,
        )
        .values("flow_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    for r in failed:
        rows[r["flow_id"]].failed = r["n"]
    slos = slos if slos is not None else slos_for_plant(plant)
    for slo in slos:
        row = rows.get(slo.flow_id)
        if slo.kind == SLO.Kind.LATENCY and row is not None and row.latency_slo is None:
            row.latency_slo = slo
    measured = {row.latency_slo.id: row for row in rows.values() if row.latency_slo}
    merged = defaultdict(dict)
    for slo_id, *_, hist in rollups.rows(
        measured, plant_id=plant.id, since=window.since, until=window.until
    ):
        histogram.add_all(merged[slo_id], hist)
    for slo_id, row in measured.items():
        row.p95 = histogram.percentile(merged[slo_id], 0.95)
    return list(rows.values())


# ── Stuck quality holds and dead letters ───────────────────────────────────────────────────

HOLD_FLOW = "quality_hold"
HOLDS_SHOWN = 10
OPEN_DEAD_LETTER = Q(state__in=sorted(DeadLetter.OPEN_STATES))


def stuck_holds(plant, now, limit=HOLDS_SHOWN):
    """The oldest stuck quality holds of the plant, oldest first."""
    return list(
        Transaction.objects.filter(plant=plant, flow__code=HOLD_FLOW)
        .filter(_stuck_q(now))
        .select_related("flow")
        .order_by("first_seen", "id")[:limit]
    )


def dead_letters_by_class(plant):
    """Open dead letters of the plant per error class: count and the oldest first failure."""
    return list(
        DeadLetter.objects.filter(plant=plant)
        .filter(OPEN_DEAD_LETTER)
        .values("error_class")
        .annotate(count=Count("*"), oldest=Min("first_failed_at"), new=_count_new())
        .order_by("-count", "error_class")
    )


def _count_new():
    return Count("state", filter=Q(state=DeadLetterState.NEW))


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


# ── All plants ─────────────────────────────────────────────────────────────────────────────


@dataclass
class PlantRow:
    plant: Plant
    state: str = "no_data"
    breaching: list = field(default_factory=list)
    warning: list = field(default_factory=list)
    slo_count: int = 0
    stuck: int = 0
    dead_letters: int = 0
    last_seen: datetime | None = None
    evaluated_at: datetime | None = None

    @property
    def state_label(self):
        return STATUS_LABELS[self.state]


def plant_rows(user, now):
    """One row per plant the person may see: worst SLO status and what is stuck or failed.

    Four queries whatever the number of plants and transactions.
    """
    latest = Transaction.objects.filter(plant=OuterRef("pk")).order_by("-last_seen")
    plants = list(
        Plant.objects.for_user(user)
        .annotate(last_seen=Subquery(latest.values("last_seen")[:1]))
        .order_by("code")
    )
    rows = {p.id: PlantRow(plant=p, last_seen=p.last_seen) for p in plants}
    if not rows:
        return []
    statuses = (
        SLOStatus.objects.filter(plant_id__in=rows, slo__enabled=True)
        .select_related("slo")
        .order_by("slo_id")
    )
    for status in statuses:
        row = rows[status.plant_id]
        row.slo_count += 1
        row.evaluated_at = max(filter(None, [row.evaluated_at, status.evaluated_at]))
        state = status.status if status.total else "no_data"
        if state == "breaching":
            row.breaching.append(status.slo)
        elif state == "warning":
            row.warning.append(status.slo)
        row.state = worst([row.state, state])
    stuck = (
        Transaction.objects.filter(_stuck_q(now), plant_id__in=rows)
        .values("plant_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    for r in stuck:
        rows[r["plant_id"]].stuck = r["n"]
    letters = (
        DeadLetter.objects.filter(OPEN_DEAD_LETTER, plant_id__in=rows)
        .values("plant_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    for r in letters:
        rows[r["plant_id"]].dead_letters = r["n"]
    return list(rows.values())


# ── One SLO ────────────────────────────────────────────────────────────────────────────────

WORST_SHOWN = 20


def slo_for_plant(plant, slug):
    slo = next((s for s in slos_for_plant(plant) if s.slug == slug), None)
    if slo is None:
        raise Http404(f"No SLO {slug!r} measures plant {plant.code}.")
    return slo


def slo_history(slo, plant, window):
    """Hourly attainment and burn rate over the window (monitoring.slo.series)."""
    return series(slo, plant_id=plant.id, since=window.since, until=window.until)


def slo_histogram(slo, plant, window):
    """The summed latency histogram of the window and its percentiles."""
    merged = rollups.merged_histogram(
        [slo.id], plant_id=plant.id, since=window.since, until=window.until
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
        .select_related("transaction__flow", "dead_letter")
        .order_by(F("latency").desc(nulls_first=True), "-at")[:limit]
    )
