"""Shared by the alert tests: a fixed clock, a stuck-release rule and its transaction, and the
ids handed to the broker."""

from datetime import UTC, datetime, timedelta

import pytest

from monitoring.alerts import delivery
from monitoring.models import AlertRule
from tests.events import event
from tracing.ingest.pipeline import ingest_events

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


@pytest.fixture
def enqueued(monkeypatch):
    """Ids handed to the broker; the sending itself is driven by the test through deliver()."""
    calls = []
    monkeypatch.setattr(delivery, "enqueue", lambda ids, countdown=None: calls.append(list(ids)))
    return calls


def stuck_rule(**fields):
    fields.setdefault("name", "Order releases stuck")
    fields.setdefault("severity", "critical")
    fields.setdefault("threshold_count", 0)
    return AlertRule.objects.create(kind="stuck", **fields)


def stuck_release(corr="PO-9", plant="P100", at=NOW - timedelta(hours=2)):
    ingest_events([event("released", correlation_id=corr, plant=plant, at=at)], now=at + MIN)
