"""Concurrent senders of overlapping batches store each event once (database constraint)."""

import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connection, transaction

from integration_hub.models import Flow
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


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_senders_of_the_same_ids_in_opposite_orders_do_not_deadlock(p100, caplog):
    """Each batch claims its ids in one order (sorted), whatever order it lists them in: the
    second waits for the first instead of each holding ids the other wants, which the database
    breaks by aborting one (retried, but a second lost). A third transaction holds the middle
    id until both senders wait, so that they meet there every time."""
    base = datetime.now(UTC) - timedelta(minutes=10)
    events = [
        event(correlation_id=f"PO-{i // 10}", event_id=f"d{i:04}", at=base) for i in range(1000)
    ]
    db = connection.settings_dict
    dsn = f"host={db['HOST']} port={db['PORT'] or 5432} user={db['USER']} dbname={db['NAME']}"
    totals = []

    def sender(batch):
        try:
            totals.append(ingest_events(batch).accepted)
        finally:
            connection.close()

    waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted"
    with psycopg.connect(dsn) as holder, psycopg.connect(dsn, autocommit=True) as watcher:
        holder.execute(
            "INSERT INTO tracing_eventledger (event_id, received_at) VALUES ('d0500', now())"
        )
        threads = [threading.Thread(target=sender, args=(b,)) for b in (events, events[::-1])]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while watcher.execute(waiting).fetchone()[0] < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        holder.rollback()
        for t in threads:
            t.join()
    assert sorted(totals) == [0, 1000]
    assert [r.getMessage() for r in caplog.records if "aborted" in r.getMessage()] == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_transaction_created_by_a_concurrent_batch_meanwhile_gets_the_events_folded_in(p100):
    """The batch did not see the transaction (uncommitted elsewhere), so it tries to insert its
    own, waits on the other's commit, finds it taken and folds its events into that row."""
    at = datetime.now(UTC) - timedelta(minutes=5)
    db = connection.settings_dict
    dsn = f"host={db['HOST']} port={db['PORT'] or 5432} user={db['USER']} dbname={db['NAME']}"
    other_started, theirs = threading.Event(), {}

    def other_batch():
        try:
            with transaction.atomic():
                theirs["id"] = Transaction.objects.create(
                    flow=Flow.objects.get(code="order_release"),
                    plant=p100,
                    correlation_id="PO-RACE",
                    first_seen=at,
                    last_seen=at,
                    first_event_id="theirs",
                    stuck_at=at + timedelta(hours=1),
                ).id
                other_started.set()
                # Commit only once the ingest below waits on this row's identity.
                with psycopg.connect(dsn, autocommit=True) as watcher:
                    waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted"
                    while not watcher.execute(waiting).fetchone()[0]:
                        time.sleep(0.01)
        finally:
            connection.close()

    thread = threading.Thread(target=other_batch)
    thread.start()
    assert other_started.wait(10)
    # PO-CALM is new to both batches: still written beside the identity taken meanwhile.
    outcome = ingest_events(
        [event("released", correlation_id=corr, at=at) for corr in ("PO-RACE", "PO-CALM")]
    )
    thread.join()
    assert outcome.accepted == 2
    txn = Transaction.objects.get(correlation_id="PO-RACE")
    assert txn.id == theirs["id"]
    assert (txn.event_count, list(txn.milestones)) == (1, ["released"])
    assert TraceEvent.objects.get(correlation_id="PO-RACE").transaction_id == txn.id
    calm = Transaction.objects.get(correlation_id="PO-CALM")
    calm_event = TraceEvent.objects.get(correlation_id="PO-CALM")
    assert (calm.event_count, calm.first_event_id) == (1, calm_event.event_id)
    assert calm_event.transaction_id == calm.id


@pytest.mark.postgres
@pytest.mark.django_db
def test_errors_of_the_raw_ingest_statements_are_djangos_own(p100):
    """A deadlock or a lost connection in a statement the pipeline sends itself must reach the
    retry and the 503 rule as Django's exception, like the ORM's."""
    from django.db import OperationalError

    from tracing.ingest.sql import server_bound_cursor

    with pytest.raises(OperationalError) as caught, server_bound_cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)
    connection.close()
