"""Reads behind the plant dashboards: aggregate queries only, a fixed number per page.

Every function here costs the same number of queries whatever the data volume: counts come
from grouped aggregates over indexed columns, latency from the SLO rollups, never from a query
per row. Views and the benchmark (tests/bench/dashboard.py) share these functions.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Min, OuterRef, Q, Subquery

from integration_hub.models import Flow, Plant
from monitoring.dashboards.tiles import STATUS_LABELS, slos_for_plant, worst
from monitoring.dashboards.windows import start_of_day
from monitoring.models import SLO, SLOStatus
from monitoring.slo import histogram, rollups
from tracing.models import DeadLetter, DeadLetterState, Transaction, TransactionState

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


OPEN_STATES = [TransactionState.IN_FLIGHT, TransactionState.STUCK]


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
    # Counts of stuck_at (never null), a column the txn_open index holds: no heap visit.
    open_counts = (
        Transaction.objects.filter(plant=plant, state__in=OPEN_STATES)
        .values("flow_id")
        .annotate(
            in_flight=Count(
                "stuck_at", filter=Q(state=TransactionState.IN_FLIGHT, stuck_at__gt=now)
            ),
            stuck=Count("stuck_at", filter=stuck),
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
    # The same filters the search page applies for state=failed&from=…&to=…, answered from
    # the txn_failed index alone (it holds flow and first_seen).
    failed = (
        Transaction.objects.filter(
            plant=plant,
            state=TransactionState.FAILED,
            last_seen__gte=window.since,
            first_seen__lte=window.until,
        )
        .values("flow_id")
        .annotate(n=Count("first_seen"))
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
        measured, plant_id=plant.id, since=window.since, until=window.until, tz=plant.tzinfo
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
        state = status.status if status.has_figures else "no_data"
        if state == "breaching":
            row.breaching.append(status.slo)
        elif state == "warning":
            row.warning.append(status.slo)
        row.state = worst([row.state, state])
    stuck = (  # from the txn_open index alone, as in flow_rows
        Transaction.objects.filter(plant_id__in=rows, state__in=OPEN_STATES)
        .values("plant_id")
        .annotate(n=Count("stuck_at", filter=_stuck_q(now)))
        .order_by()
    )
    for r in stuck:
        rows[r["plant_id"]].stuck = r["n"]
    letters = (  # from the dl_open_class index alone
        DeadLetter.objects.filter(OPEN_DEAD_LETTER, plant_id__in=rows)
        .values("plant_id")
        .annotate(n=Count("*"))
        .order_by()
    )
    for r in letters:
        rows[r["plant_id"]].dead_letters = r["n"]
    return list(rows.values())
