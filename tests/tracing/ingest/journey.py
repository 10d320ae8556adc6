"""One order release's journey with failures, retries and a late resend, and the folded row
of a transaction: what the correlation property tests of both paths compare."""

from datetime import UTC, datetime, timedelta

from tests.events import event, failed
from tracing.ingest.correlate import FOLDED_FIELDS

T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=10)


def at(seconds):
    return T0 + timedelta(seconds=seconds)


def row_of(t):
    return {name: getattr(t, name) for name in FOLDED_FIELDS} | {"stuck_at": t.stuck_at}


JOURNEY = [
    event("released", at=at(0), event_id="e1", business_keys={"order": "9", "material": "FG-1"}),
    failed("received", at=at(3), event_id="e2", source="MW", payload={"x": 1}),
    failed(
        "received", at=at(5), event_id="e3", source="MW", status="retrying", error_class="transient"
    ),
    event(
        "received", at=at(9), event_id="e4", source="MW", business_keys={"order": "9", "lot": "L1"}
    ),
    failed("acknowledged", at=at(20), event_id="e5", source="MES", code="E7"),
    event("acknowledged", at=at(21), event_id="e6", source="MES"),
    event("released", at=at(-1), event_id="e7", business_keys={"order": "10"}),
]
