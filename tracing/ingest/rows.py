"""Transaction rows of the ingest path: built new, inserted, read (and locked), written back.

On PostgreSQL by raw statements whose rows travel as one JSON parameter (sql.py); Django's
per-row costs (Model.__init__, JSON decoding, bulk_update's CASE per row and field) cost more
than the statements. On SQLite through the ORM.
"""

import operator

import orjson
from django.db import connection
from django.db.models.base import ModelState

from tracing.ingest.correlate import FOLDED_FIELDS
from tracing.ingest.sql import json_rows, pg_insert, pg_type, recordset, server_bound_cursor
from tracing.models import Transaction, TransactionState

_TXN_FIELDS = {f.attname: f for f in Transaction._meta.concrete_fields}


# Columns written back after folding, with the PostgreSQL type each is read as from the JSON
# recordset (sql.recordset).
TXN_COLUMNS = tuple(
    (name, pg_type(_TXN_FIELDS[name])) for name in (*FOLDED_FIELDS, "stuck_at", "updated_at")
)


_JSON_COLUMNS = {column for column, kind in TXN_COLUMNS if kind == "jsonb"}
# A transaction's identity (txn_key), as sent in a JSON recordset.
IDENTITY_COLUMNS = (("plant_id", "bigint"), ("flow_id", "bigint"), ("correlation_id", "text"))


def new_transaction(event, now):
    """A new transaction of this event, before any event is folded into it.

    Built without Model.__init__ (which costs more per row than folding the events: it walks
    every field for defaults); the row is written by insert_transactions or bulk_create."""
    txn = Transaction.__new__(Transaction)
    txn._state = ModelState()
    txn.__dict__.update(
        id=None, flow_id=event.flow.id, correlation_id=event.correlation_id,
        plant_id=event.plant_id, state=TransactionState.IN_FLIGHT, business_keys={},
        first_seen=event.occurred_at, last_seen=event.occurred_at, first_event_id=event.event_id,
        milestones={}, milestones_last_ok={}, milestone_systems={}, partial_since=None,
        failure_at=None, failure_step="", failure_event_id="", last_error=None, event_count=0,
        completed_at=None, stuck_at=event.occurred_at + event.flow.stuck_after, updated_at=now,
    )  # fmt: skip
    return txn


def insert_transactions(txns):
    """INSERT the new transactions as they are (PostgreSQL; ids set on them); return the
    identities that exist already (a concurrent batch created them), which are not written."""
    created = pg_insert(
        Transaction._meta.db_table,
        [*IDENTITY_COLUMNS, *TXN_COLUMNS],
        [[t.plant_id, t.flow_id, t.correlation_id, *_txn_values(t)] for t in txns],
        suffix="ON CONFLICT (plant_id, flow_id, correlation_id) DO NOTHING "
        "RETURNING id, plant_id, flow_id, correlation_id",
    )
    by_key = {identity(t): t for t in txns}
    for pk, *key in created:
        by_key.pop(tuple(key)).id = pk
    return set(by_key)


def identity(txn):
    return (txn.plant_id, txn.flow_id, txn.correlation_id)


def select_locked(keys, *, lock=True):
    if not keys:
        return {}
    if connection.vendor == "postgresql":
        typed = IDENTITY_COLUMNS
        return _pg_transactions(
            f"JOIN {recordset(typed)} USING (plant_id, flow_id, correlation_id)",
            json_rows(typed, sorted(keys)),
            lock=lock,
        )
    rows = Transaction.objects.select_for_update() if lock else Transaction.objects.all()
    rows = rows.filter(
        plant_id__in={plant for plant, _, _ in keys},
        flow_id__in={flow for _, flow, _ in keys},
        correlation_id__in={corr for _, _, corr in keys},
    ).order_by("id")
    return {identity(t): t for t in rows if identity(t) in keys}


def present(keys):
    """Which of these identities have a transaction (PostgreSQL; read, not locked)."""
    typed = IDENTITY_COLUMNS
    with server_bound_cursor() as cursor:
        cursor.execute(
            f"SELECT plant_id, flow_id, correlation_id FROM {Transaction._meta.db_table} "
            f"JOIN {recordset(typed)} USING (plant_id, flow_id, correlation_id)",
            [json_rows(typed, sorted(keys))],
        )
        return set(cursor.fetchall())


def locked_by_id(ids):
    """The transactions with these ids by identity, locked FOR UPDATE in id order (PostgreSQL)."""
    return _pg_transactions("WHERE t.id = ANY(%s)", list(ids), lock=True)


_TXN_NAMES = [f.attname for f in Transaction._meta.concrete_fields]
_TXN_SELECT = ", ".join(
    f"t.{name}::text" if _TXN_FIELDS[name].get_internal_type() == "JSONField" else f"t.{name}"
    for name in _TXN_NAMES
)
_TXN_JSON = [
    i for i, name in enumerate(_TXN_NAMES) if _TXN_FIELDS[name].get_internal_type() == "JSONField"
]


def _pg_transactions(clause, param, *, lock):
    """Transaction rows of `SELECT … FROM transaction t {clause}` (one parameter), ordered by id
    and locked unless not `lock`, by identity. JSON columns come as text for orjson: Django's
    per-row decoding cost more than the query."""
    table = Transaction._meta.db_table
    with server_bound_cursor() as cursor:
        cursor.execute(
            f"SELECT {_TXN_SELECT} FROM {table} t {clause} ORDER BY t.id"
            + (" FOR UPDATE OF t" if lock else ""),
            [param],
        )
        rows = cursor.fetchall()
    found = {}
    for row in rows:
        values = list(row)
        for i in _TXN_JSON:
            values[i] = None if values[i] is None else orjson.loads(values[i])
        txn = Transaction.from_db(connection.alias, _TXN_NAMES, values)
        found[identity(txn)] = txn
    return found


# The folded columns of a transaction, in TXN_COLUMNS order (one C call, not a getattr each).
_txn_values = operator.attrgetter(*(column for column, _ in TXN_COLUMNS))


def _txn_row(txn, adapt):
    """The folded columns for SQLite: JSON as text, times adapted."""
    row = []
    for column, kind in TXN_COLUMNS:
        value = getattr(txn, column)
        if column in _JSON_COLUMNS:
            value = None if value is None else orjson.dumps(value).decode()
        elif kind == "timestamptz":
            value = adapt(value)
        row.append(value)
    return row


def update_transactions(txns):
    """Write the folded aggregates back: one UPDATE … FROM the rows as JSON on PostgreSQL
    (Django's bulk_update builds a CASE per row and field, which costs more than the rest of a
    batch)."""
    if not txns:
        return
    table = Transaction._meta.db_table
    if connection.vendor == "postgresql":
        typed = [("id", "bigint"), *TXN_COLUMNS]
        assignments = ", ".join(f"{column} = v.{column}" for column, _ in TXN_COLUMNS)
        with server_bound_cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS t SET {assignments} FROM {recordset(typed)} WHERE t.id = v.id",
                [json_rows(typed, ([t.id, *_txn_values(t)] for t in txns))],
            )
        return
    adapt = connection.ops.adapt_datetimefield_value
    assignments = ", ".join(f"{column} = %s" for column, _ in TXN_COLUMNS)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET {assignments} WHERE id = %s",
            [[*_txn_row(t, adapt), t.id] for t in txns],
        )
