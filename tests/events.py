"""Event builders for tests: the sample events of shared/, and small valid events."""

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "events.jsonl"
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
