"""Dead-letter capture: failed messages kept, with their payload, for triage and replay."""

from integration_hub.fingerprint import fingerprint
from integration_hub.models import DeadLetter


def dead_letters_for_events(events, event_pks):
    """Create one dead letter per failed/rejected event that carries a payload (idempotent).

    `events` are validated events just inserted; `event_pks` maps their event_id to the row id.
    """
    DeadLetter.objects.bulk_create(
        [
            DeadLetter(
                external_id=e.event_id,
                event_id=event_pks[e.event_id],
                transaction_id=e.transaction_id,
                fingerprint=fingerprint(
                    flow=e.flow.code,
                    target=e.raw.get("target"),
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
                payload=e.raw.get("payload"),
                first_failed_at=e.occurred_at,
                last_failed_at=e.occurred_at,
            )
            for e in events
        ],
        ignore_conflicts=True,
    )
