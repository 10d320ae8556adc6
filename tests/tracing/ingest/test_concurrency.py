"""Concurrent senders of overlapping batches store each event once (database constraint)."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from tests.events import event
from tracing.ingest.pipeline import ingest_events
from tracing.models import TraceEvent, Transaction


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_overlapping_batches_from_concurrent_senders_store_each_event_once(p100):
    base = datetime.now(UTC) - timedelta(minutes=10)
    steps = ["released", "received", "acknowledged"]
    events = [
        event(
            steps[i % 3],
            correlation_id=f"PO-{i // 3}",
            event_id=f"e{i}",
            at=base + timedelta(seconds=i),
        )
        for i in range(300)
    ]
    totals, errors = [], []

    def sender(offset):
        try:
            batch = events[offset:] + events[:offset]
            result = ingest_events(batch)
            totals.append((result.accepted, result.duplicates))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sender, args=(k * 37,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(a for a, _ in totals) == 300
    assert sum(d for _, d in totals) == 5 * 300
    assert TraceEvent.objects.count() == 300
    assert Transaction.objects.count() == 100
    assert set(Transaction.objects.values_list("event_count", flat=True)) == {3}
    assert set(Transaction.objects.values_list("state", flat=True)) == {"completed"}
