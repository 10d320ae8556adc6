"""The unique guarantee on event_id holds across partitions: two senders of one event_id at
the same moment, received on either side of midnight, store it once."""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from tests.events import event
from tracing.ingest.pipeline import ingest_events
from tracing.models import EventLedger, TraceEvent
from tracing.partitions.ensure import ensure_partitions

MIDNIGHT = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
def partitions_around_midnight(db):
    created = ensure_partitions(now=MIDNIGHT, unit="day")
    yield
    if connection.in_atomic_block:
        return  # rolled back with the test
    with connection.cursor() as cursor:  # a transactional test keeps what it creates
        for item in created:
            cursor.execute(f"DROP TABLE IF EXISTS {item.partition.name}")


def waiting_on_a_lock(pid):
    with connection.cursor() as cursor:
        cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = cursor.fetchone()
    return row is not None and row[0] == "Lock"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_duplicates_across_a_partition_boundary_store_one(
    p100, partitions_around_midnight
):
    before, after = MIDNIGHT - timedelta(milliseconds=1), MIDNIGHT + timedelta(milliseconds=1)
    # The same event_id in two transactions, so that only the event_id can make them wait.
    one, other = (
        event(event_id="erp-rel-4711-1", correlation_id=corr, at=before - timedelta(seconds=5))
        for corr in ("PO-A", "PO-B")
    )
    results, errors, pids = {}, [], {}
    first_stored, let_first_commit = threading.Event(), threading.Event()

    def first():  # stores the event just before midnight, then holds its transaction open
        try:
            with transaction.atomic():
                results["first"] = ingest_events([one], now=before)
                first_stored.set()
                let_first_commit.wait(10)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            first_stored.set()
            connection.close()

    def second():  # the same id just after midnight, into the next day's partition
        try:
            connection.ensure_connection()
            pids["second"] = connection.connection.info.backend_pid
            results["second"] = ingest_events([other], now=after)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    assert first_stored.wait(10)
    assert errors == [] and results["first"].accepted == 1, (errors, results)
    threads[1].start()
    deadline = time.monotonic() + 10
    while not ("second" in pids and waiting_on_a_lock(pids["second"])):
        assert time.monotonic() < deadline, "the second sender never waited for the first"
        time.sleep(0.02)
    let_first_commit.set()
    for thread in threads:
        thread.join(15)
    assert errors == []
    assert (results["first"].accepted, results["first"].duplicates) == (1, 0)
    assert (results["second"].accepted, results["second"].duplicates) == (0, 1)
    stored = TraceEvent.objects.get(event_id="erp-rel-4711-1")
    assert (stored.correlation_id, stored.received_at) == ("PO-A", before)
    assert EventLedger.objects.get(event_id="erp-rel-4711-1").received_at == before


@pytest.mark.postgres
def test_a_resent_event_is_a_duplicate_whichever_partition_it_would_land_in(
    p100, partitions_around_midnight
):
    sent = event(event_id="mes-cnf-1", at=MIDNIGHT - timedelta(hours=1))
    assert ingest_events([sent], now=MIDNIGHT - timedelta(minutes=30)).accepted == 1
    again = ingest_events([sent], now=MIDNIGHT + timedelta(days=2))
    assert (again.accepted, again.duplicates) == (0, 1)
    assert TraceEvent.objects.filter(event_id="mes-cnf-1").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_ledger_keeps_only_the_indexes_something_reads():
    """Every stored event writes a ledger row: its primary key (ingest's ON CONFLICT) and the
    receive-time index (partition drops) are read; a LIKE index on event_id never is."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexname",
            [EventLedger._meta.db_table],
        )
        indexes = [row[0].split(" USING ")[1] for row in cursor.fetchall()]
    assert indexes == ["btree (event_id)", "btree (received_at)"]
