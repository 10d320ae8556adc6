"""Ingestion: a batch of reported events in, durable rows and updated transactions out.

Set-based: a handful of queries per batch whatever its size. Idempotency lives in the unique
index on event_id (INSERT … ON CONFLICT DO NOTHING RETURNING), not in a read-then-write check,
so concurrent senders of the same events store each once.
"""

from dataclasses import dataclass, field

import orjson
from django.db import connection, transaction
from django.utils import timezone

from integration_hub.deadletters import dead_letters_for_events
from tracing.contract import Catalog, validate_event
from tracing.correlate import FOLDED_FIELDS, fold_event, settle
from tracing.models import BusinessKey, TraceEvent, Transaction, TransactionState

EVENT_COLUMNS = (
    "event_id", "transaction_id", "flow_id", "correlation_id", "step", "source_id", "target_id",
    "plant_id", "status", "occurred_at", "received_at", "business_keys", "error_class",
    "error_code", "error_message", "payload", "attributes",
)  # fmt: skip
_PG_TYPES = (
    "text", "bigint", "bigint", "text", "text", "bigint", "bigint", "bigint", "text",
    "timestamptz", "timestamptz", "jsonb", "text", "text", "text", "jsonb", "jsonb",
)  # fmt: skip
SQLITE_ROWS_PER_STATEMENT = 500


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list = field(default_factory=list)
    inserted_ids: list = field(default_factory=list)

    def as_dict(self):
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


def ingest_events(raw_events, *, api_key=None, now=None):
    """Validate, store and correlate a batch.

    Accepts a list of decoded JSON values. Guarantees: each valid event is stored once (events
    already stored, or repeated within the batch, are counted as duplicates); every invalid one
    is reported by index with all its field errors; the events and their transactions are
    committed together before this returns.
    """
    now = now or timezone.now()
    catalog = Catalog()
    result = IngestResult()
    valid, seen = [], set()
    for index, raw in enumerate(raw_events):
        clean, errors = validate_event(raw, catalog=catalog, now=now, api_key=api_key)
        if errors:
            event_id = raw.get("event_id") if isinstance(raw, dict) else None
            result.rejected.append(
                {
                    "index": index,
                    "event_id": event_id if isinstance(event_id, str) else None,
                    "errors": errors,
                }
            )
        elif clean.event_id in seen:
            result.duplicates += 1
        else:
            seen.add(clean.event_id)
            valid.append(clean)
    if valid:
        with transaction.atomic():
            inserted = store_events(valid, catalog=catalog, now=now)
        result.accepted = len(inserted)
        result.duplicates += len(valid) - len(inserted)
        result.inserted_ids = inserted
    return result


def store_events(events, *, catalog, now):
    """Insert new events and fold them into their (locked) transactions; return new event ids."""
    txns = lock_transactions(events, now=now)
    for event in events:
        event.transaction_id = txns[(event.flow.id, event.correlation_id)].id
    inserted = insert_events(events, received_at=now)
    new_events = [e for e in events if e.event_id in inserted]
    touched = {}
    for event in sorted(new_events, key=lambda e: (e.occurred_at, e.event_id)):
        txn = txns[(event.flow.id, event.correlation_id)]
        fold_event(txn, event)
        touched[txn.id] = txn
    for txn in touched.values():
        settle(txn, catalog.flows_by_id[txn.flow_id], now)
        txn.updated_at = now
    Transaction.objects.bulk_update(
        list(touched.values()), [*FOLDED_FIELDS, "stuck_at", "updated_at"]
    )
    BusinessKey.objects.bulk_create(
        [
            BusinessKey(transaction_id=e.transaction_id, name=name, value=value)
            for e in new_events
            for name, value in e.business_keys.items()
        ],
        ignore_conflicts=True,
    )
    dead_letters_for_events([e for e in new_events if e.is_failure and e.payload_json], inserted)
    return [e.event_id for e in new_events]


def lock_transactions(events, *, now):
    """The transactions of these events, created if new, locked FOR UPDATE in id order."""
    keys = {(e.flow.id, e.correlation_id) for e in events}
    found = _select_locked(keys)
    missing = keys - found.keys()
    if missing:
        first = {}
        for e in events:
            key = (e.flow.id, e.correlation_id)
            if key in missing and (key not in first or e.occurred_at < first[key].occurred_at):
                first[key] = e
        Transaction.objects.bulk_create(
            [
                Transaction(
                    flow_id=e.flow.id,
                    correlation_id=e.correlation_id,
                    plant_id=e.plant_id,
                    state=TransactionState.IN_FLIGHT,
                    first_seen=e.occurred_at,
                    last_seen=e.occurred_at,
                    first_event_id=e.event_id,
                    stuck_at=e.occurred_at + e.flow.stuck_after,
                    event_count=0,
                    updated_at=now,
                )
                for e in first.values()
            ],
            ignore_conflicts=True,
        )
        found.update(_select_locked(missing))
    return found


def _select_locked(keys):
    flows = {flow_id for flow_id, _ in keys}
    correlation_ids = {corr for _, corr in keys}
    rows = (
        Transaction.objects.select_for_update()
        .filter(flow_id__in=flows, correlation_id__in=correlation_ids)
        .order_by("id")
    )
    return {(t.flow_id, t.correlation_id): t for t in rows if (t.flow_id, t.correlation_id) in keys}


def _event_row(e, received_at):
    return (
        e.event_id, e.transaction_id, e.flow.id, e.correlation_id, e.step, e.source_id,
        e.target_id, e.plant_id, e.status, e.occurred_at, received_at,
        _keys_json(e.business_keys), e.error_class, e.error_code, e.error_message,
        e.payload_json, e.attributes_json,
    )  # fmt: skip


def _keys_json(keys):
    return orjson.dumps(keys).decode()


def insert_events(events, *, received_at):
    """INSERT … ON CONFLICT (event_id) DO NOTHING; return {event_id: pk} of the rows inserted."""
    table = TraceEvent._meta.db_table
    columns = ", ".join(EVENT_COLUMNS)
    rows = [_event_row(e, received_at) for e in events]
    inserted = {}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            arrays = ", ".join(f"%s::{t}[]" for t in _PG_TYPES)
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays}) "
                "ON CONFLICT (event_id) DO NOTHING RETURNING event_id, id",
                [list(col) for col in zip(*rows, strict=True)],
            )
            inserted.update(cursor.fetchall())
        else:
            adapt = connection.ops.adapt_datetimefield_value
            one = "(" + ", ".join(["%s"] * len(EVENT_COLUMNS)) + ")"
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
    return inserted
