"""Event builders for tests: the plant's sample events, small valid events, and the dead letters
they make."""

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tracing.ingest.pipeline import ingest_events
from tracing.models import DeadLetter

# A copy of shared/samples/events.jsonl: the suite reads nothing outside the repository.
SAMPLES = Path(__file__).resolve().parent / "data" / "sample_events.jsonl"
_SAMPLE_EPOCH = datetime(2026, 11, 20, 5, 56, tzinfo=UTC)  # a minute after the last sample
_ids = itertools.count(1)


def sample_events(now=None):
    """The shared sample events, shifted so the last one happened just before `now`."""
    events = [json.loads(line) for line in SAMPLES.read_text().splitlines() if line.strip()]
    if now is None:
        return events
    shift = now - _SAMPLE_EPOCH
    for event in events:
        event["occurred_at"] = (datetime.fromisoformat(event["occurred_at"]) + shift).isoformat()
    return events


def event(step="released", *, flow="order_release", at=None, **fields):
    """A valid order-release event; override any field."""
    at = at or datetime.now(UTC) - timedelta(minutes=1)
    base = {
        "event_id": f"evt-{next(_ids)}",
        "correlation_id": "PO-1",
        "flow": flow,
        "step": step,
        "source": "ERP",
        "target": "MES",
        "plant": "P100",
        "occurred_at": at.isoformat() if isinstance(at, datetime) else at,
        "business_keys": {"order": "1"},
    }
    base.update(fields)
    return base


def failed(step, *, code="E1", message="boom", error_class="business_rule", **fields):
    fields.setdefault("status", "failed")
    return event(step, error={"class": error_class, "code": code, "message": message}, **fields)


# --- dead letters -----------------------------------------------------------------------------

PAYLOAD = {"ProductionOrder": {"ID": "1000124", "Routing": "R-4712-02"}}


def dead_letter(correlation_id="PO-1", *, plant="P100", order="1", **fields):
    fields.setdefault("payload", PAYLOAD)
    fields.setdefault("code", "ROUTING_NOT_FOUND")
    fields.setdefault("message", f"Routing R-{order}-02 not released in plant {plant}")
    fields.setdefault("error_class", "master_data")
    result = ingest_events(
        [
            failed(
                "received",
                correlation_id=correlation_id,
                plant=plant,
                business_keys={"order": order},
                status="rejected",
                **fields,
            )  # fmt: skip
        ]
    )
    assert result.accepted == 1, result.rejected
    return DeadLetter.objects.get(correlation_id=correlation_id)
