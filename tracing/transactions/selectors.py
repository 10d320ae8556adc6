"""Reads shared by pages and the API: transaction search, detail, journeys."""

from datetime import UTC, datetime

from django.db.models import Q
from django.utils import timezone

from tracing.models import BusinessKey, TraceEvent, Transaction, TransactionState


class InvalidFilter(ValueError):
    """A filter value that cannot be used; `field` names it."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field


def parse_time(field, value):
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidFilter(
            field, f"{value!r} is not an ISO 8601 time such as 2026-11-20T06:00:00Z."
        ) from None
    parsed = parsed if parsed.tzinfo else timezone.make_aware(parsed)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 with an offset falls off the calendar
        raise InvalidFilter(field, f"{value!r} is outside the calendar.") from None


SYSTEM_EVENTS = 500


def search_transactions(
    *,
    user=None,
    plant=None,
    flow=None,
    system=None,
    state=None,
    since=None,
    until=None,
    correlation_id=None,
    key=None,
    q=None,
    now=None,
):
    """Transactions matching every filter given, newest activity first.

    `key` is "name:value" (order:4711) or a bare value; `q` is what a person types in the search
    box: a correlation ID or any business key value. `system` keeps the transactions of that
    system's latest SYSTEM_EVENTS events (where a silent system was last heard of).
    """
    qs = Transaction.objects.select_related("flow", "plant")
    if user is not None:
        qs = qs.for_user(user)
    if plant:
        qs = qs.filter(plant__code=plant)
    if flow:
        qs = qs.filter(flow__code=flow)
    if system:
        latest = TraceEvent.objects.filter(source__code=system)
        if plant:
            latest = latest.filter(plant__code=plant)
        latest = latest.order_by("-received_at").values("transaction_id")[:SYSTEM_EVENTS]
        qs = qs.filter(id__in=latest)
    if state:
        if state not in TransactionState.values:
            raise InvalidFilter("state", f"Must be one of {', '.join(TransactionState.values)}.")
        qs = qs.in_state(state, now)
    if since:
        qs = qs.filter(last_seen__gte=since)
    if until:
        qs = qs.filter(first_seen__lte=until)
    if correlation_id:
        qs = qs.filter(correlation_id=correlation_id)
    if key:
        name, sep, value = key.partition(":")
        keys = (
            BusinessKey.objects.filter(name=name, value=value)
            if sep
            else BusinessKey.objects.filter(value=key)
        )
        qs = qs.filter(id__in=keys.values("transaction_id"))
    if q:
        # A UNION of two index lookups; an OR across the two would make PostgreSQL walk
        # every transaction by recency and filter.
        q = q.strip()
        by_correlation = Transaction.objects.filter(correlation_id=q).values("id")
        by_key = BusinessKey.objects.filter(value=q).values("transaction_id")
        qs = qs.filter(id__in=by_correlation.union(by_key))
    return qs.order_by("-last_seen", "-id")


def get_transaction(*, flow, correlation_id, user=None, plant=None):
    """The transaction of (plant, flow, correlation ID) that the reader may see.

    Without `plant`, the one visible plant that has it; raises SeveralPlants when several
    visible plants do, Transaction.DoesNotExist when none does.
    """
    qs = Transaction.objects.select_related("flow")
    if user is not None:
        qs = qs.for_user(user)
    return qs.filter(flow__code=flow, correlation_id=correlation_id).of_one_plant(plant)


def transaction_events(txn):
    """Its events in the order they happened."""
    return (
        TraceEvent.objects.filter(transaction=txn)
        .select_related("flow", "plant", "source", "target", "dead_letter")
        .order_by("occurred_at", "id")
    )


# Keys that identify one business object; descriptive ones (material, operation) would link
# every transaction that touches the same material number.
JOURNEY_KEYS = (
    "order",
    "delivery",
    "shipment",
    "lot",
    "batch",
    "handling_unit",
    "serial",
    "nonconformance",
)


def journey(txn, limit=50, user=None):
    """Other transactions that share an identifying business key with this one (its journey)."""
    values = BusinessKey.objects.filter(transaction=txn, name__in=JOURNEY_KEYS).values_list(
        "name", "value"
    )
    if not values:
        return Transaction.objects.none()
    match = Q()
    for name, value in values:
        match |= Q(name=name, value=value)
    ids = BusinessKey.objects.filter(match).exclude(transaction=txn).values("transaction_id")
    # A journey stays in its plant: two plants may reuse the same order numbers.
    qs = Transaction.objects.filter(id__in=ids, plant_id=txn.plant_id)
    if user is not None:
        qs = qs.for_user(user)
    return qs.select_related("flow", "plant").order_by("flow__position", "first_seen")[:limit]
