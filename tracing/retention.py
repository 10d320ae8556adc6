"""What of the tracing data has expired, and what must stay whatever its age.

Kept regardless of age: the events and payloads a dead letter points at while it exists, every
event of an open transaction (in flight or stuck) or of one with an open dead letter, open
dead letters, and transactions that are open or still have a dead letter. Everything else goes
when its plant's retention for that kind has passed (integration_hub/retention.py).
"""

from functools import reduce
from operator import or_

from django.db.models import Q

from integration_hub.retention import Purge, cutoffs
from tracing.models import DeadLetter, TraceEvent, Transaction, TransactionState
from tracing.partitions.expiry import drop_partitions_before
from tracing.partitions.tables import partition_spans

OPEN_TRANSACTION = (TransactionState.IN_FLIGHT, TransactionState.STUCK)
OPEN_DEAD_LETTER = tuple(DeadLetter.OPEN_STATES)
CLOSED_DEAD_LETTER = tuple(DeadLetter.CLOSED_STATES)


# Events that stay whatever their age: of an open transaction, behind a dead letter, or of a
# transaction with an open dead letter.
EVENTS_THAT_STAY = (
    Q(transaction__state__in=OPEN_TRANSACTION),
    Q(dead_letter__isnull=False),
    Q(transaction__dead_letters__state__in=OPEN_DEAD_LETTER),
)


def expired_events(now):
    """Raw events received before their plant's cutoff, but for those a partition drop takes."""
    events_cutoffs = cutoffs("events", now)
    events = TraceEvent.objects.filter(events_cutoffs.q(plant="plant_id", time="received_at"))
    for rule in (*EVENTS_THAT_STAY, *waiting_for_their_partition(events_cutoffs)):
        events = events.exclude(rule)
    return events


def waiting_for_their_partition(events_cutoffs):
    """Events that go with their whole partition (PostgreSQL): those of the plants kept
    longest, inside a range partition. They stay up to one period (EVENT_PARTITION) past their
    retention instead of going row by row; a plant kept for less loses its rows on time."""
    drop_before, spans = events_cutoffs.everywhere(), partition_spans()
    if drop_before is None or not spans:
        return []
    longest = Q(plant_id__in=[pk for pk, at in events_cutoffs.plants.items() if at == drop_before])
    if events_cutoffs.default == drop_before:
        longest |= ~Q(plant_id__in=list(events_cutoffs.plants))
    inside = reduce(or_, (Q(received_at__gte=start, received_at__lt=end) for start, end in spans))
    return [longest & inside]


def staying(events):
    """Of these events, the ones that stay whatever their age."""
    return events.filter(reduce(or_, EVENTS_THAT_STAY))


def drop_event_partitions(*, now, dry_run, note):
    """On PostgreSQL, the event partitions received before every plant's cutoff go whole."""
    before = cutoffs("events", now).everywhere()
    return drop_partitions_before(before, keep=staying, dry_run=dry_run, note=note)


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
    Purge("events", expired_events, drop=drop_event_partitions),
    Purge("transactions", expired_transactions),
]
