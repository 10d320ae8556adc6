"""Correlation: fold trace events into their transaction.

Every field of a transaction is an order-independent aggregate of its events (min, max, union,
latest-by-(time, event id)), so any arrival order, and any duplication, gives the same row.
"""

from datetime import datetime

from integration_hub.calendars import NO_DOWNTIME
from tracing.models import TransactionState

FOLDED_FIELDS = (
    "business_keys", "first_seen", "last_seen", "first_event_id", "milestones",
    "milestones_last_ok", "milestone_systems", "failure_at", "failure_step", "failure_event_id",
    "last_error", "event_count", "completed_at", "state", "partial_since",
)  # fmt: skip


def _time(value):
    return datetime.fromisoformat(value) if isinstance(value, str) else value  # None stays None


def fold_event(txn, event):
    """Merge one new (not duplicate) event into the transaction's aggregates, in place."""
    at = event.occurred_at
    if txn.event_count == 0 or (at, event.event_id) < (txn.first_seen, txn.first_event_id):
        txn.first_seen, txn.first_event_id = at, event.event_id
    if txn.event_count == 0 or at > txn.last_seen:
        txn.last_seen = at
    txn.event_count += 1
    keys = txn.business_keys
    for name, value in event.business_keys.items():
        # Two values for one key: keep the smaller, so the result does not depend on order.
        if name not in keys or value < keys[name]:
            keys[name] = value
    if event.status == "ok":
        iso = event.occurred_text()
        first, last = txn.milestones.get(event.step), txn.milestones_last_ok.get(event.step)
        if first is None or at < _time(first):
            txn.milestones[event.step] = iso
        if last is None or at > _time(last):
            txn.milestones_last_ok[event.step] = iso
        by_system = txn.milestone_systems.setdefault(event.step, {})
        for system_id in {event.source_id, event.target_id} - {None}:
            seen = by_system.get(str(system_id))
            if seen is None:
                by_system[str(system_id)] = [iso, iso]
            else:
                if at < _time(seen[0]):
                    seen[0] = iso
                if at > _time(seen[1]):
                    seen[1] = iso
    elif event.is_failure and (
        txn.failure_at is None or (at, event.event_id) > (txn.failure_at, txn.failure_event_id)
    ):
        txn.failure_at, txn.failure_step, txn.failure_event_id = at, event.step, event.event_id
        txn.last_error = {
            "class": event.error_class,
            "code": event.error_code,
            "message": event.error_message,
            "step": event.step,
            "status": event.status,
            "at": event.occurred_text(),
            "event_id": event.event_id,
        }


def failure_cleared(txn, milestones):
    """A failure is cleared by a later ok event at the same or a later milestone."""
    if txn.failure_at is None:
        return True
    later = milestones[milestones.index(txn.failure_step) :]
    return any(
        _time(txn.milestones_last_ok[m]) > txn.failure_at
        for m in later
        if m in txn.milestones_last_ok
    )


def targets_reached(txn, milestone, targets):
    """{target system id: first time it reached the milestone} for the flow's targets."""
    by_system = txn.milestone_systems.get(milestone, {})
    return {t: _time(by_system[str(t)][0]) for t in targets if str(t) in by_system}


def reached_at(txn, milestone, fan_out=(), targets=()):
    """When a milestone counts as reached: its first ok event; for a fan-out milestone, when
    the last of the flow's target systems first reached it (None until every one has)."""
    if milestone in fan_out and targets:
        reached = targets_reached(txn, milestone, targets)
        return max(reached.values()) if len(reached) == len(targets) else None
    return _time(txn.milestones.get(milestone))


def partial_since(txn, fan_out, targets):
    """Since when a fan-out milestone has reached some targets and not all (None if none)."""
    starts = []
    for milestone in fan_out:
        reached = targets_reached(txn, milestone, targets)
        if reached and len(reached) < len(targets):
            starts.append(min(reached.values()))
    return min(starts, default=None)


def settle(txn, flow, now, windows=NO_DOWNTIME):
    """Derive completion time and state from the aggregates; stuck-after counts only time
    outside the plant's planned downtime for the flow (`windows`). A fan-out milestone
    completes only when every target system has reached it."""
    reached = [reached_at(txn, m, flow.fan_out, flow.targets) for m in flow.completing]
    reached = [at for at in reached if at is not None]
    txn.completed_at = min(reached) if reached else None
    txn.partial_since = partial_since(txn, flow.fan_out, flow.targets)
    txn.stuck_at = windows.deadline(txn.first_seen, flow.stuck_after.total_seconds())
    if not failure_cleared(txn, flow.milestones):
        txn.state = TransactionState.FAILED
    elif txn.completed_at is not None:
        txn.state = TransactionState.COMPLETED
    elif txn.stuck_at <= now:
        txn.state = TransactionState.STUCK
    else:
        txn.state = TransactionState.IN_FLIGHT
