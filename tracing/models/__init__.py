"""What happened: trace events, transactions and their business keys, and dead letters."""

from tracing.models.dead_letters import DeadLetter, DeadLetterChange, DeadLetterState
from tracing.models.events import (
    FAILURE_STATUSES,
    BusinessKey,
    CorrelatorPace,
    EventLedger,
    EventStatus,
    PendingCorrelation,
    TraceEvent,
    Transaction,
    TransactionState,
    timeline_url,
)

__all__ = [
    "FAILURE_STATUSES",
    "BusinessKey",
    "CorrelatorPace",
    "DeadLetter",
    "DeadLetterChange",
    "DeadLetterState",
    "EventLedger",
    "EventStatus",
    "PendingCorrelation",
    "TraceEvent",
    "Transaction",
    "TransactionState",
    "timeline_url",
]
