"""Shapes of transactions and events in the API (plain functions: hot read paths)."""

from django.utils import timezone


def _iso(value):
    return value.isoformat() if value else None


def transaction_data(txn, now=None):
    now = now or timezone.now()
    return {
        "flow": txn.flow.code,
        "correlation_id": txn.correlation_id,
        "plant": txn.plant.code,
        "state": txn.current_state(now),
        "business_keys": txn.business_keys,
        "first_seen": _iso(txn.first_seen),
        "last_seen": _iso(txn.last_seen),
        "milestones": {m: txn.milestones[m] for m in txn.flow.milestones if m in txn.milestones},
        "last_error": txn.last_error,
        "event_count": txn.event_count,
        "completed_at": _iso(txn.completed_at),
        "stuck_at": _iso(txn.stuck_at),
    }


def event_data(event):
    """The event as it was sent (fields it did not carry are left out), plus received_at."""
    data = {
        "event_id": event.event_id,
        "correlation_id": event.correlation_id,
        "flow": event.flow.code,
        "step": event.step,
        "source": event.source.code,
        "plant": event.plant.code,
        "status": event.status,
        "occurred_at": _iso(event.occurred_at),
        "business_keys": event.business_keys,
    }
    if event.target_id:
        data["target"] = event.target.code
    for name in ("error", "payload", "attributes"):
        value = getattr(event, name)
        if value is not None:
            data[name] = value
    data["received_at"] = _iso(event.received_at)
    return data
