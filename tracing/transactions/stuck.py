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


def restamp(plant_id, until, calendar, now=None):
    """A planned downtime of the plant changed: its open transactions begun before `until` get
    their stuck-after deadline again (only time outside downtime counts), and their state with
    it. Each row changes only if it is still open as read (an event may settle it meanwhile).
    Returns how many changed."""
    now = now or timezone.now()
    open_states = (TransactionState.IN_FLIGHT, TransactionState.STUCK)
    rows = Transaction.objects.filter(
        plant_id=plant_id, first_seen__lte=until, state__in=open_states
    ).select_related("flow")
    changed = 0
    for txn in rows.iterator(chunk_size=1000):
        windows = calendar.windows(plant_id, txn.flow_id)
        stuck_at = windows.deadline(txn.first_seen, txn.flow.stuck_after.total_seconds())
        state = TransactionState.STUCK if stuck_at <= now else TransactionState.IN_FLIGHT
        if (stuck_at, state) != (txn.stuck_at, txn.state):
            changed += Transaction.objects.filter(pk=txn.pk, state=txn.state).update(
                stuck_at=stuck_at, state=state, updated_at=now
            )
    return changed
