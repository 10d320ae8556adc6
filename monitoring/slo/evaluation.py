"""The periodic run that beat triggers: stuck marking, outcomes and rollups, SLO status."""

from django.db import transaction
from django.db.models import Count, Min
from django.utils import timezone

from monitoring.models import StuckSummary
from monitoring.slo import outcomes
from monitoring.slo.figures import evaluate_slos
from tracing.models import Transaction, TransactionState
from tracing.transactions.stuck import mark_stuck


def summarize_stuck(now):
    """Per flow and plant: the count of stuck transactions and when the oldest started."""
    rows = (
        Transaction.objects.filter(state=TransactionState.STUCK)
        .values("flow_id", "plant_id")
        .annotate(count=Count("id"), oldest=Min("first_seen"))
        .order_by()
    )
    summaries = [
        StuckSummary(
            flow_id=r["flow_id"],
            plant_id=r["plant_id"],
            count=r["count"],
            oldest_since=r["oldest"],
            evaluated_at=now,
        )
        for r in rows
    ]
    with transaction.atomic():
        StuckSummary.objects.all().delete()
        StuckSummary.objects.bulk_create(summaries)
    return summaries


def run_evaluation(now=None):
    """One evaluation, as beat runs it every SLO_EVALUATION_SECONDS. Returns what it did."""
    now = now or timezone.now()
    marked = mark_stuck(now)
    rollups = outcomes.refresh(now)
    statuses = evaluate_slos(now)
    stuck = summarize_stuck(now)
    return {
        "marked_stuck": marked,
        "rollups_recomputed": rollups,
        "statuses": len(statuses),
        "stuck_groups": len(stuck),
        "evaluated_at": now.isoformat(),
    }
