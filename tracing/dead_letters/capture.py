"""Dead letters captured at ingest: a failed/rejected event that carries a payload."""

from tracing.dead_letters.fingerprint import fingerprint
from tracing.ingest.sql import insert_models
from tracing.models import DeadLetter

# Keys that name one business object, most specific to the journey first: a bulk replay sends
# one order's steps in flow order, so the order number wins over a lot or delivery.
ORDERING_KEYS = (
    "order", "delivery", "shipment", "lot", "batch", "handling_unit", "serial", "nonconformance",
)  # fmt: skip


def business_key_of(keys):
    """The identifying "name:value" a bulk replay orders by, or ""."""
    for name in ORDERING_KEYS:
        value = (keys or {}).get(name)
        if isinstance(value, str) and value:
            return f"{name}:{value}"[:300]
    return ""


def dead_letters_for_events(events, event_pks):
    """Create one dead letter per failed/rejected event that carries a payload (idempotent).

    `events` are validated events just inserted; `event_pks` maps their event_id to the row id.
    """
    letters = [
        DeadLetter(
            external_id=e.event_id,
            event_id=event_pks[e.event_id],
            transaction_id=e.transaction_id,
            fingerprint=fingerprint(
                flow=e.flow.code,
                target=e.target,
                error_class=e.error_class,
                error_code=e.error_code,
                message=e.error_message,
            ),
            flow_id=e.flow.id,
            plant_id=e.plant_id,
            source_id=e.source_id,
            target_id=e.target_id,
            correlation_id=e.correlation_id,
            step=e.step,
            error_class=e.error_class,
            error_code=e.error_code,
            error_message=e.error_message,
            payload=e.payload,
            business_keys=e.business_keys,
            business_key=business_key_of(e.business_keys),
            first_failed_at=e.occurred_at,
            last_failed_at=e.occurred_at,
        )
        for e in events
    ]
    insert_models(letters, ignore_conflicts=True)
