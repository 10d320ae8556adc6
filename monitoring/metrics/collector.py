"""Prometheus families read from the database at scrape time: whatever gunicorn worker answers,
the figures are the same, because they are the rows every worker shares."""

from itertools import product

from django.db.models import BooleanField, Case, Count, Value, When
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from integration_hub.models import Flow, Plant, WorkerHeartbeat
from monitoring.models import SLOStatus
from monitoring.models.alerts import Delivery
from monitoring.models.replay import ReplayAttempt
from tracing.ingest.backlog import backlog, pace
from tracing.models import DeadLetter, Transaction, TransactionState

OPEN_STATES = (TransactionState.IN_FLIGHT, TransactionState.STUCK, TransactionState.FAILED)
ALL_PLANTS = "all"


class DatabaseCollector:
    def describe(self):
        return []  # nothing to query when registered; collect() runs per scrape

    def collect(self):
        now = timezone.now()
        yield open_transactions(now)
        yield from slo_families()
        yield dead_letters()
        yield replay_attempts()
        yield alert_deliveries()
        yield heartbeat_age(now)
        yield from correlation_backlog(now)


def open_transactions(now):
    """Open transactions per plant, flow and state (an overdue in-flight one counts as stuck,
    as pages read it between two stuck sweeps); zero rows are shown too."""
    family = GaugeMetricFamily(
        "hub_open_transactions",
        "Transactions not completed, by plant, flow and state (in_flight, stuck, failed).",
        labels=["plant", "flow", "state"],
    )
    rows = (
        Transaction.objects.exclude(state=TransactionState.COMPLETED)
        .annotate(
            overdue=Case(
                When(state=TransactionState.IN_FLIGHT, stuck_at__lte=now, then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            )
        )
        .values_list("plant__code", "flow__code", "state", "overdue")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts = {}
    for plant, flow, state, overdue, n in rows:
        state = TransactionState.STUCK if overdue else state
        counts[plant, flow, state] = counts.get((plant, flow, state), 0) + n
    plants = Plant.objects.values_list("code", flat=True)
    flows = Flow.objects.values_list("code", flat=True)
    for plant, flow, state in product(plants, flows, OPEN_STATES):
        family.add_metric([plant, flow, state], counts.get((plant, flow, str(state)), 0))
    return family


def slo_families():
    """Attainment, error budget left, burn rates and status of each SLO × plant (and all)."""
    labels = ["slo", "plant"]
    attainment = GaugeMetricFamily(
        "hub_slo_attainment", "Share of good events over the SLO window.", labels=labels
    )
    objective = GaugeMetricFamily("hub_slo_objective", "The SLO's objective.", labels=labels)
    budget = GaugeMetricFamily(
        "hub_slo_error_budget_remaining",
        "Share of the error budget left (negative when overspent).",
        labels=labels,
    )
    burn = GaugeMetricFamily(
        "hub_slo_burn_rate", "Error budget burn rate per window.", labels=[*labels, "window"]
    )
    status = GaugeMetricFamily(
        "hub_slo_status",
        "1 for the SLO's current status (ok, warning, breaching), 0 for the others.",
        labels=[*labels, "status"],
    )
    rows = SLOStatus.objects.filter(slo__enabled=True).select_related("slo", "plant")
    for row in rows.order_by("slo__slug", "plant__code"):
        names = [row.slo.slug, row.plant.code if row.plant else ALL_PLANTS]
        if row.attainment is not None:
            attainment.add_metric(names, row.attainment)
        objective.add_metric(names, row.slo.objective)
        budget.add_metric(names, row.error_budget_remaining)
        for window, rate in sorted((row.burn_rates or {}).items()):
            if rate is not None:
                burn.add_metric([*names, window], rate)
        for value in SLOStatus.Status.values:
            status.add_metric([*names, value], 1 if row.status == value else 0)
    return attainment, objective, budget, burn, status


def dead_letters():
    family = GaugeMetricFamily(
        "hub_dead_letters",
        "Dead letters by plant, triage state and error class.",
        labels=["plant", "state", "error_class"],
    )
    rows = (
        DeadLetter.objects.values_list("plant__code", "state", "error_class")
        .annotate(n=Count("id"))
        .order_by()
    )
    for plant, state, error_class, n in sorted(rows):
        family.add_metric([plant, state, error_class], n)
    return family


def replay_attempts():
    family = CounterMetricFamily(
        "hub_replay_attempts",
        "Replay delivery attempts by target system and outcome (succeeded, retry, failed).",
        labels=["target", "outcome"],
    )
    rows = (
        ReplayAttempt.objects.values_list("replay__target__code", "outcome")
        .annotate(n=Count("id"))
        .order_by()
    )
    for target, outcome, n in sorted(rows):
        family.add_metric([target, outcome], n)
    return family


def alert_deliveries():
    family = GaugeMetricFamily(
        "hub_alert_deliveries",
        "Alert deliveries by channel kind and outcome (sent, failed; pending, sending).",
        labels=["kind", "outcome"],
    )
    rows = (
        Delivery.objects.filter(is_test=False)
        .values_list("channel__kind", "state")
        .annotate(n=Count("id"))
        .order_by()
    )
    for kind, state, n in sorted(rows):
        family.add_metric([kind, state], n)
    return family


def heartbeat_age(now):
    family = GaugeMetricFamily(
        "hub_worker_heartbeat_age_seconds",
        "Seconds since a Celery worker last ran the heartbeat task.",
        labels=["worker"],
    )
    for name, at in WorkerHeartbeat.objects.values_list("name", "at").order_by("name"):
        family.add_metric([name], (now - at).total_seconds())
    return family


def correlation_backlog(now):
    """The deferred correlator's queue: events waiting, how long the oldest has waited, and how
    fast the running correlators fold (all 0 when ingest folds in the request)."""
    queued, waited = backlog(now)
    depth = GaugeMetricFamily(
        "hub_correlation_queued_events",
        "Stored events waiting for the correlator (INGEST_CORRELATION=deferred).",
    )
    depth.add_metric([], queued)
    lag = GaugeMetricFamily(
        "hub_correlation_lag_seconds",
        "How long the oldest event waiting for the correlator has waited.",
    )
    lag.add_metric([], waited)
    speed = GaugeMetricFamily(
        "hub_correlation_pace_events_per_second",
        "How fast the running correlators fold, together, as they measured it (0: none lately); "
        "the event doors hold back a batch the queue ahead would keep past the lag at this pace.",
    )
    speed.add_metric([], pace(now) or 0.0)
    return depth, lag, speed
