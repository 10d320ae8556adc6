"""The correlator: folds queued events into their transactions when INGEST_CORRELATION=deferred.

The ingest request then only validates, stores and queues (pipeline.store_events): the
transaction rows exist from the request on, and their aggregates, business keys for search,
dead letters and superseded marks follow at the correlator's next pass: straight on while it
finds events, within CORRELATOR_IDLE_SECONDS once the queue is dry. One pass takes up to
CORRELATOR_BATCH queued events, oldest first, and folds them with the request path's own
functions (pipeline.correlate) in one database transaction that also deletes their queue rows:
a crash folds nothing twice and loses nothing. Each pass big enough to tell records how fast
this correlator folds, which the event doors weigh the queue by (backlog.py). Passes may run
side by side (PostgreSQL skips the queue rows another holds; transactions are locked in id
order); folding does not depend on arrival order.
"""

import time
from dataclasses import dataclass

import orjson
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone

from tracing.ingest.backlog import record_pace
from tracing.ingest.contract import Catalog, CleanEvent
from tracing.ingest.pipeline import correlate, json_text, txn_key, with_deadlock_retry
from tracing.ingest.rows import locked_by_id
from tracing.ingest.sql import server_bound_cursor
from tracing.models import FAILURE_STATUSES, PendingCorrelation, TraceEvent, Transaction

_FOLD_COLUMNS = (
    "id", "event_id", "transaction_id", "flow_id", "correlation_id", "step", "source_id",
    "target_id", "plant_id", "status", "occurred_at", "business_keys", "error_class",
    "error_code", "error_message",
)  # fmt: skip


@dataclass
class Pass:
    folded: int = 0  # events folded into their transactions
    claimed: int = 0  # queue rows taken (an event gone by retention is claimed, not folded)


def correlate_pending(*, limit=None, now=None):
    """One pass: fold up to `limit` queued events, oldest first; return what it did."""
    limit = limit or settings.CORRELATOR_BATCH
    return with_deadlock_retry(lambda: _pass(limit, now or timezone.now()))


def _pass(limit, now):
    catalog = Catalog.current()
    if connection.vendor == "postgresql":
        claimed, rows = _pg_claim_and_load(limit)
    else:
        claimed, rows = _claim_and_load(limit)
    if not claimed:
        return Pass()
    events, pks = _events(rows, catalog)
    txns = _lock({e.transaction_id for e in events})
    # A transaction removed by retention since its event was queued has nothing left to fold.
    events = [e for e in events if txn_key(e) in txns]
    correlate(events, txns, pks, catalog=catalog, now=now)
    return Pass(folded=len(events), claimed=claimed)


def _pg_claim_and_load(limit):
    """Take the oldest queue rows (skipping those another pass holds), delete them and read
    their events, in one statement: (rows claimed, event rows as _FOLD_COLUMNS + payload).
    An event gone since (retention) comes back as nulls."""
    queue, table = PendingCorrelation._meta.db_table, TraceEvent._meta.db_table
    columns = ", ".join(f"e.{c}" for c in _FOLD_COLUMNS).replace(
        "e.business_keys", "e.business_keys::text"
    )
    failures = ", ".join(f"'{status}'" for status in sorted(FAILURE_STATUSES))
    with server_bound_cursor() as cursor:
        cursor.execute(
            f"WITH claimed AS (DELETE FROM {queue} WHERE id IN (SELECT id FROM {queue} "
            "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING event_pk, received_at) "
            f"SELECT {columns}, CASE WHEN e.status IN ({failures}) THEN e.payload::text END "
            f"FROM claimed c LEFT JOIN {table} e "
            "ON e.id = c.event_pk AND e.received_at = c.received_at",
            [limit],
        )
        rows = cursor.fetchall()
    return len(rows), [row for row in rows if row[0] is not None]


def _claim_and_load(limit):
    """_pg_claim_and_load for SQLite, where one writer at a time needs no skipping."""
    claimed = list(PendingCorrelation.objects.order_by("id").values_list("id", "event_pk")[:limit])
    PendingCorrelation.objects.filter(id__in=[pk for pk, _ in claimed]).delete()
    rows = TraceEvent.objects.filter(id__in=[pk for _, pk in claimed]).values_list(
        *_FOLD_COLUMNS, "payload"
    )
    return len(claimed), [
        (*row[:-1], None if row[9] not in FAILURE_STATUSES else json_text(row[-1])) for row in rows
    ]


def _events(rows, catalog):
    """The event rows as the CleanEvents validation made of them, and {event_id: pk}."""
    code_of = {pk: code for code, pk in catalog.systems.items()}
    plant_code = {pk: code for code, pk in catalog.plants.items()}
    events, pks = [], {}
    for pk, event_id, txn, flow, corr, step, source, target, plant, status, *rest in rows:
        occurred_at, keys, error_class, error_code, error_message, payload_json = rest
        pks[event_id] = pk
        events.append(
            CleanEvent(
                event_id=event_id,
                correlation_id=corr,
                flow=catalog.flows_by_id[flow],
                step=step,
                source_id=source,
                target_id=target,
                plant_id=plant,
                status=status,
                occurred_at=occurred_at,
                business_keys=orjson.loads(keys) if isinstance(keys, str) else keys or {},
                error_class=error_class,
                error_code=error_code,
                error_message=error_message,
                payload_json=payload_json,
                attributes_json=None,
                source=code_of.get(source, ""),
                target=code_of.get(target),
                plant=plant_code.get(plant, ""),
                payload=None if payload_json is None else orjson.loads(payload_json),
                transaction_id=txn,
            )
        )
    return events, pks


def _lock(ids):
    """The transactions by txn_key, locked FOR UPDATE in id order."""
    if connection.vendor == "postgresql":
        return locked_by_id(ids)
    rows = Transaction.objects.select_for_update().filter(id__in=ids).order_by("id")
    return {(t.plant_id, t.flow_id, t.correlation_id): t for t in rows}


# A pass of fewer events says more about a pass's fixed cost than about the pace.
PACE_MIN_EVENTS = 1000


def run(*, stop, report=None, report_every=10.0, batch=None, idle=None, on_error=None):
    """Pass after pass until `stop()`: straight on while a pass finds events (so the newest
    never waits out an idle pause behind a short pass), after `idle` seconds once the queue is
    dry. Each pass of at least PACE_MIN_EVENTS (or a full batch) records the pace the event
    doors judge the queue by (backlog.record_pace). `report(folded, seconds)` every
    `report_every`; a database that goes away is `on_error(exc)`, then tried again every
    second (the queue keeps what arrived: nothing is lost while it waits)."""
    batch = batch or settings.CORRELATOR_BATCH
    idle = settings.CORRELATOR_IDLE_SECONDS if idle is None else idle
    folded, since = 0, time.monotonic()
    while not stop():
        started = time.monotonic()
        try:
            done = correlate_pending(limit=batch)
            if done.claimed >= min(batch, PACE_MIN_EVENTS):
                record_pace(done.claimed, time.monotonic() - started)
        except (OperationalError, InterfaceError) as exc:
            if on_error:
                on_error(exc)
            connection.close()
            time.sleep(max(idle, 1.0))
            continue
        folded += done.folded
        if report and time.monotonic() - since >= report_every:
            report(folded, time.monotonic() - since)
            folded, since = 0, time.monotonic()
        if not done.claimed:
            time.sleep(idle)
