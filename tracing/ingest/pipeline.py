"""Ingestion: a batch of reported events in, durable rows and updated transactions out.

Set-based: a handful of queries per batch whatever its size. Idempotency lives in a unique
index on event_id (INSERT … ON CONFLICT DO NOTHING RETURNING: the event table's on SQLite, the
event ledger's on PostgreSQL, where events are partitioned), not in a read-then-write check,
so concurrent senders of the same events store each once.
"""

import logging
from dataclasses import dataclass, field

import orjson
from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from tracing.dead_letters.capture import dead_letters_for_events
from tracing.dead_letters.superseded import mark_superseded_of
from tracing.ingest.compiled import validate_events
from tracing.ingest.contract import Catalog
from tracing.ingest.correlate import fold_event, settle
from tracing.ingest.metrics import count_outcomes
from tracing.ingest.rows import (
    identity,
    insert_transactions,
    new_transaction,
    present,
    select_locked,
    update_transactions,
)
from tracing.ingest.sql import event_sequence, insert_select, json_rows, server_bound_cursor
from tracing.models import (
    BusinessKey,
    EventLedger,
    PendingCorrelation,
    TraceEvent,
    Transaction,
)

EVENT_COLUMNS = (
    "event_id", "transaction_id", "flow_id", "correlation_id", "step", "source_id", "target_id",
    "plant_id", "status", "occurred_at", "received_at", "business_keys", "error_class",
    "error_code", "error_message", "payload", "attributes",
)  # fmt: skip

log = logging.getLogger(__name__)


SQLITE_ROWS_PER_STATEMENT = 500


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list = field(default_factory=list)
    inserted_ids: list = field(default_factory=list)

    def as_dict(self):
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


def ingest_events(raw_events, *, api_key=None, now=None, defer=None):
    """Validate, store and correlate a batch.

    Accepts a list of decoded JSON values, or of the TypedEvents that http.parse_events makes
    of a well-formed body (judged alike: compiled.py). Guarantees: each valid event is stored
    once (events already stored, or repeated within the batch, are counted as duplicates);
    every invalid one is reported by index with all its field errors; the events and their
    transactions are committed together before this returns. Deferred (`defer`, by default
    INGEST_CORRELATION=deferred), the events are committed with their place in the
    correlator's queue instead, and their transactions follow when it folds them.
    """
    now = now or timezone.now()
    if defer is None:
        defer = settings.INGEST_CORRELATION == "deferred"
    catalog = Catalog.current()
    batch = validate_events(raw_events, catalog=catalog, now=now, api_key=api_key)
    result = IngestResult(duplicates=len(batch.repeats), rejected=batch.rejected)
    if batch.valid:
        inserted = with_deadlock_retry(
            lambda: store_events(batch.valid, catalog=catalog, now=now, defer=defer)
        )
        result.accepted = len(inserted)
        result.duplicates += len(batch.valid) - len(inserted)
        result.inserted_ids = inserted
    count_outcomes(batch, result.inserted_ids, catalog=catalog)
    return result


def with_deadlock_retry(work, attempts=3):
    """Run `work` in a transaction; retry when PostgreSQL aborts it as a deadlock victim.

    Two batches that share transactions lock rows in different orders now and then; the
    database breaks the tie by aborting one, and re-running it is safe (nothing committed).
    """
    for attempt in range(attempts):
        try:
            with transaction.atomic():
                return work()
        except OperationalError as exc:
            code = getattr(exc.__cause__, "sqlstate", None)
            if code not in ("40P01", "40001") or attempt == attempts - 1:
                raise
            log.warning(
                "Ingest batch aborted by the database (%s), attempt %d: retrying.",
                code,
                attempt + 1,
            )


def store_events(events, *, catalog, now, defer=False):
    """Insert new events and fold them into their (locked) transactions; return new event ids.

    Deferred, the transactions are only created where new (not locked: nothing is folded
    here) and the new events are queued for the correlator in the statement that stores them.
    """
    if connection.vendor == "postgresql":
        return _pg_store_events(events, catalog=catalog, now=now, defer=defer)
    txns = lock_transactions(events, now=now, lock=not defer)
    for event in events:
        event.transaction_id = txns[txn_key(event)].id
    inserted = insert_events(events, received_at=now, queue=defer)
    new_events = [e for e in events if e.event_id in inserted]
    if not defer:
        correlate(new_events, txns, inserted, catalog=catalog, now=now)
    return [e.event_id for e in new_events]


def _pg_store_events(events, *, catalog, now, defer):
    """store_events on PostgreSQL, in the order that writes each row once.

    The ids are claimed first (the ledger says which events are new, and hands out their row
    ids), so only new events touch transactions; a new transaction is inserted already folded
    (not a stub, then an update); the events go in by one COPY straight into their partitions.
    """
    pks = claim_event_ids(events, received_at=now, queue=defer)
    new_events = [e for e in events if e.event_id in pks]
    if not new_events:
        return []
    if defer:
        txns = lock_transactions(new_events, now=now, lock=False)
        for event in new_events:
            event.transaction_id = txns[txn_key(event)].id
        copy_events(new_events, pks, received_at=now)
        return [e.event_id for e in new_events]
    # New transactions first, then the existing ones locked in id order: every batch takes its
    # locks in that order, so two batches never wait on each other in a circle (an existing row
    # locked first, then an insert waiting on a row the other inserted, deadlocked).
    keys = {txn_key(e) for e in new_events}
    existing = present(keys)
    first = {}
    for e in new_events:
        key = txn_key(e)
        if key not in existing and (key not in first or e.occurred_at < first[key].occurred_at):
            first[key] = e
    fresh = {key: new_transaction(event, now) for key, event in first.items()}
    touched = _fold_and_settle(
        [e for e in new_events if txn_key(e) in fresh], fresh, catalog=catalog, now=now
    )
    for key in insert_transactions([fresh[key] for key in sorted(fresh)]):
        del fresh[key], touched[key]  # created meanwhile by a concurrent batch: fold into it
    txns = select_locked(keys - fresh.keys())
    touched.update(
        _fold_and_settle(
            [e for e in new_events if txn_key(e) in txns], txns, catalog=catalog, now=now
        )
    )
    for event in new_events:
        event.transaction_id = touched[txn_key(event)].id
    update_transactions([t for key, t in touched.items() if key not in fresh])
    copy_events(new_events, pks, received_at=now)
    created = {t.id for t in fresh.values()}
    _after_fold(new_events, touched.values(), pks, catalog=catalog, now=now, created=created)
    return [e.event_id for e in new_events]


def _fold_and_settle(events, txns, *, catalog, now):
    touched = fold_events(events, txns)
    settle_transactions(touched.values(), catalog=catalog, now=now)
    return touched


def correlate(new_events, txns, inserted, *, catalog, now):
    """Fold stored events into their locked transactions (`txns` by txn_key) and bring what
    hangs off them up to date: business keys, dead letters, superseded marks."""
    touched = _fold_and_settle(new_events, txns, catalog=catalog, now=now)
    update_transactions(list(touched.values()))
    _after_fold(new_events, touched.values(), inserted, catalog=catalog, now=now)


def _after_fold(new_events, touched, inserted, *, catalog, now, created=frozenset()):
    insert_business_keys(
        {
            (e.transaction_id, name, value)
            for e in new_events
            for name, value in e.business_keys.items()
        },
        created,
    )
    dead_letters_for_events([e for e in new_events if e.is_failure and e.payload_json], inserted)
    # A dead letter whose transaction has now reached its milestone must not be replayed.
    mark_superseded_of(touched, catalog.flows_by_id, now=now)


def fold_events(events, txns):
    """Fold new events into their transactions (`txns` by txn_key) in (time, event id) order;
    return those touched, by txn_key."""
    touched = {}
    for event in sorted(events, key=lambda e: (e.occurred_at, e.event_id)):
        key = txn_key(event)
        fold_event(txns[key], event)
        touched[key] = txns[key]
    return touched


def settle_transactions(txns, *, catalog, now):
    """Settle each folded transaction against its plant's planned downtime ahead of it."""
    calendar = catalog.calendar
    for txn in txns:
        settle(
            txn, catalog.flows_by_id[txn.flow_id], now, calendar.windows(txn.plant_id, txn.flow_id)
        )
        txn.updated_at = now


def txn_key(event):
    """A transaction's identity: plant, flow and correlation ID."""
    return (event.plant_id, event.flow.id, event.correlation_id)


def lock_transactions(events, *, now, lock=True):
    """The transactions of these events, created if new, locked FOR UPDATE (unless not `lock`)."""
    first = {}
    for e in events:
        key = txn_key(e)
        if key not in first or e.occurred_at < first[key].occurred_at:
            first[key] = e
    stubs = [new_transaction(first[key], now) for key in sorted(first)]
    if connection.vendor == "postgresql":
        # Insert the new ones (locked by the insert itself), then lock the others.
        taken = insert_transactions(stubs)
        found = {identity(t): t for t in stubs if identity(t) not in taken}
        found.update(select_locked(taken, lock=lock))
        return found
    found = select_locked(first.keys(), lock=lock)
    missing = [t for t in stubs if identity(t) not in found]
    if missing:
        Transaction.objects.bulk_create(missing, ignore_conflicts=True)
        found.update(select_locked({identity(t) for t in missing}, lock=lock))
    return found


_KEY_COLUMNS = [("transaction_id", "bigint"), ("name", "text"), ("value", "text")]


def insert_business_keys(rows, created=frozenset()):
    """Index (transaction, name, value) rows for search; existing ones are skipped. Rows of
    the transactions this batch `created` (ids; PostgreSQL) go in without that check: nobody
    else can have written keys of a transaction not yet committed."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        table = BusinessKey._meta.db_table
        new = sorted(row for row in rows if row[0] in created)
        known = sorted(row for row in rows if row[0] not in created)
        checked = "ON CONFLICT (transaction_id, name, value) DO NOTHING"
        with server_bound_cursor() as cursor:
            cursor.execute(
                f"WITH new AS ({insert_select(table, _KEY_COLUMNS)}) "
                + insert_select(table, _KEY_COLUMNS, checked),
                [json_rows(_KEY_COLUMNS, new), json_rows(_KEY_COLUMNS, known)],
            )
        return
    BusinessKey.objects.bulk_create(
        [BusinessKey(transaction_id=t, name=n, value=v) for t, n, v in rows], ignore_conflicts=True
    )


def _event_row(e, occurred_at, received_at):
    return (
        e.event_id, e.transaction_id, e.flow.id, e.correlation_id, e.step, e.source_id,
        e.target_id, e.plant_id, e.status, occurred_at, received_at,
        json_text(e.business_keys), e.error_class, e.error_code, e.error_message,
        e.payload_json, e.attributes_json,
    )  # fmt: skip


def json_text(value):
    """A value as JSON text (None stays None)."""
    return None if value is None else orjson.dumps(value).decode()


def claim_event_ids(events, *, received_at, queue=False):
    """Claim the events' ids in the ledger (PostgreSQL); return {event_id: row id} of those
    claimed, i.e. new. With `queue`, the same statement queues them for the correlator.

    The event table is partitioned, so its event_ids cannot be unique there: the ledger's
    primary key keeps them unique (ON CONFLICT DO NOTHING: a concurrent sender of the same id
    waits for this transaction, then finds it taken). The row ids come from the event table's
    sequence in the same statement, so the events can be copied in with them.
    """
    ledger, pending = EventLedger._meta.db_table, PendingCorrelation._meta.db_table
    claim = (
        f"INSERT INTO {ledger} (event_id, received_at) "
        "SELECT id, %s FROM jsonb_array_elements_text(%s::jsonb) AS ids(id) "
        "ON CONFLICT (event_id) DO NOTHING "
        f"RETURNING event_id, nextval('{event_sequence(TraceEvent._meta.db_table)}') AS pk"
    )
    # Claimed in one order by every batch, so that two batches sharing ids never each wait for
    # an id the other holds (a deadlock); one JSON text, as psycopg quotes arrays in Python.
    ids = orjson.dumps(sorted(e.event_id for e in events)).decode()
    with server_bound_cursor() as cursor:
        if queue:
            cursor.execute(
                f"WITH claimed AS ({claim}), queued AS (INSERT INTO {pending} "
                "(event_pk, received_at) SELECT pk, %s FROM claimed) "
                "SELECT event_id, pk FROM claimed",
                [received_at, ids, received_at],
            )
        else:
            cursor.execute(claim, [received_at, ids])
        return dict(cursor.fetchall())


def copy_events(events, pks, *, received_at):
    """COPY the (claimed) events with their row ids straight into their partitions. Times go
    as ISO text, formatted once (the batch's receive time) or as the fold left them."""
    sql = f"COPY {TraceEvent._meta.db_table} ({', '.join(('id', *EVENT_COLUMNS))}) FROM STDIN"
    received = received_at.isoformat()
    with server_bound_cursor() as cursor, cursor.copy(sql) as copy:
        for e in events:
            copy.write_row((pks[e.event_id], *_event_row(e, e.occurred_text(), received)))


def insert_events(events, *, received_at, queue=False):
    """INSERT … ON CONFLICT (event_id) DO NOTHING (SQLite, where event_id is unique); return
    {event_id: pk} of the rows inserted, each queued for the correlator too with `queue`."""
    table = TraceEvent._meta.db_table
    columns = ", ".join(EVENT_COLUMNS)
    rows = [_event_row(e, e.occurred_at, received_at) for e in events]
    inserted = {}
    adapt = connection.ops.adapt_datetimefield_value
    one = "(" + ", ".join(["%s"] * len(EVENT_COLUMNS)) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), SQLITE_ROWS_PER_STATEMENT):
            chunk = rows[start : start + SQLITE_ROWS_PER_STATEMENT]
            params = []
            for row in chunk:
                params.extend(row[:9] + (adapt(row[9]), adapt(row[10])) + row[11:])
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {', '.join([one] * len(chunk))} "
                "ON CONFLICT (event_id) DO NOTHING RETURNING event_id, id",
                params,
            )
            inserted.update(cursor.fetchall())
    if queue:
        PendingCorrelation.objects.bulk_create(
            PendingCorrelation(event_pk=pk, received_at=received_at) for pk in inserted.values()
        )
    return inserted
