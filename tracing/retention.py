"""What of the tracing data has expired, and what must stay whatever its age.

Kept regardless of age: the events and payloads a dead letter points at while it exists, every
event of an open transaction (in flight or stuck) or of one with an open dead letter, open
dead letters, and transactions that are open or still have a dead letter. Everything else goes
when its plant's retention for that kind has passed (integration_hub/retention.py).
"""

from integration_hub.retention import Purge, cutoffs
from tracing.models import DeadLetter, TraceEvent, Transaction, TransactionState

OPEN_TRANSACTION = (TransactionState.IN_FLIGHT, TransactionState.STUCK)
OPEN_DEAD_LETTER = tuple(DeadLetter.OPEN_STATES)
CLOSED_DEAD_LETTER = tuple(DeadLetter.CLOSED_STATES)


def expired_events(now):
    """Raw events received before their plant's cutoff."""
    return (
        TraceEvent.objects.filter(cutoffs("events", now).q(plant="plant_id", time="received_at"))
        .exclude(transaction__state__in=OPEN_TRANSACTION)
        .exclude(dead_letter__isnull=False)
        .exclude(transaction__dead_letters__state__in=OPEN_DEAD_LETTER)
    )


def expired_payloads(now):
    """Payloads of events whose transaction completed before the cutoff."""
    return TraceEvent.objects.filter(
        cutoffs("payloads", now).q(plant="plant_id", time="transaction__completed_at"),
        transaction__state=TransactionState.COMPLETED,
        payload__isnull=False,
    ).exclude(dead_letter__state__in=OPEN_DEAD_LETTER)


def drop_payloads(queryset):
    return queryset.update(payload=None)


def expired_dead_letters(now):
    """Dead letters closed (replayed, resolved, discarded) before the cutoff. Only new or
    investigating ones can be replayed, so none of these has a replay in flight."""
    return DeadLetter.objects.filter(
        cutoffs("dead_letters", now).q(plant="plant_id", time="closed_at"),
        state__in=CLOSED_DEAD_LETTER,
    )


def expired_transactions(now):
    """Closed transactions (completed or failed) last seen before the cutoff, with no dead
    letter left; their remaining events, business keys and SLO outcomes go with them."""
    return (
        Transaction.objects.filter(
            cutoffs("transactions", now).q(plant="plant_id", time="last_seen")
        )
        .exclude(state__in=OPEN_TRANSACTION)
        .exclude(dead_letters__isnull=False)
    )


# In this order: dead letters before the events and transactions they hold back.
PURGES = [
    Purge("dead_letters", expired_dead_letters),
    Purge("payloads", expired_payloads, remove=drop_payloads),
    Purge("events", expired_events),
    Purge("transactions", expired_transactions),
]
