"""Stuck detection: open transactions past their flow's stuck-after deadline."""

from django.utils import timezone

from tracing.models import Transaction, TransactionState


def mark_stuck(now=None):
    """Move in-flight transactions whose deadline has passed to stuck; return how many moved.

    One conditional UPDATE, so it is safe to run from several beats or while events arrive:
    a transaction completed or failed meanwhile is not in_flight and is left alone.
    """
    now = now or timezone.now()
    return Transaction.objects.filter(state=TransactionState.IN_FLIGHT, stuck_at__lte=now).update(
        state=TransactionState.STUCK, updated_at=now
    )
