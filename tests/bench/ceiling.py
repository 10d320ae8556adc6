"""The ingest ratio's ceiling: what HTTP ingest reaches when the per-event Python costs nothing.

    .venv/bin/python -m tests.bench.ceiling [--events N] [--workers N] [--connections N]
        [--without-transaction-indexes]

Issue 14 asks HTTP ingest for a third of an indexed COPY's rate. This bench parts what the
database does for a batch from what the web does per event. It ingests the bench's event
stream once, batch by batch in this process (ingest_events, correlation in the request),
recording every statement, parameter and COPY row each batch sends to PostgreSQL. Then, on a
fresh database, gunicorn serves tests.bench.ceiling_app, which answers each POSTed batch by
decoding its JSON (msgspec, in C) and replaying that batch's recorded SQL in one transaction:
no validation, folding or row building. Senders, batches, workers and the COPY baseline are
those of tests.bench.run, so the ratio printed is the most that any faster per-event code
(compiled, say) could reach with the same SQL on this machine.

Replayed concurrently, batches meet in another order than the recording's, so the replay
database has no foreign keys among the tracing tables (a recorded id may not exist yet) and the
business keys of new transactions get the conflict check too: the ceiling is, if anything, a
little high. --without-transaction-indexes also drops the transaction table's secondary
indexes, to show what they cost. Drops and recreates BENCH_DATABASE_URL (twice).
"""

import argparse
import os
import pickle
import tempfile
import time
from contextlib import contextmanager

import orjson
import psycopg

from tests.bench import ingest
from tests.bench.common import (
    DEFAULT_URL,
    EventStream,
    Gunicorn,
    log,
    psql,
    recreate_database,
    run_main,
    server_env,
    setup_django,
)

TARGET_RATIO = 0.33


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.ceiling", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--connections", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument("--without-transaction-indexes", action="store_true")
    return parser.parse_args(argv)


@contextmanager
def recording(ops):
    """Append what psycopg sends inside this block to `ops`: ("exec", sql, params) for each
    statement and ("copy", sql, rows) for each COPY."""
    execute, copy, write_row = psycopg.Cursor.execute, psycopg.Cursor.copy, psycopg.Copy.write_row

    def recorded_execute(cursor, query, params=None, **kwargs):
        ops.append(("exec", query, params))
        return execute(cursor, query, params, **kwargs)

    def recorded_copy(cursor, statement, params=None, **kwargs):
        ops.append(("copy", statement, []))
        return copy(cursor, statement, params, **kwargs)

    def recorded_row(copier, row):
        ops[-1][2].append(tuple(row))
        return write_row(copier, row)

    psycopg.Cursor.execute, psycopg.Cursor.copy = recorded_execute, recorded_copy
    psycopg.Copy.write_row = recorded_row
    try:
        yield ops
    finally:
        psycopg.Cursor.execute, psycopg.Cursor.copy, psycopg.Copy.write_row = (
            execute, copy, write_row,
        )  # fmt: skip


# Replayed out of the recorded order, a new transaction's business keys may already be there
# (a later batch's checked insert ran first): the replay checks those rows too.
_UNCHECKED_KEYS = " AS v ) INSERT INTO tracing_businesskey"
_CHECKED_KEYS = " AS v ON CONFLICT DO NOTHING) INSERT INTO tracing_businesskey"


def for_replay(ops):
    """A batch's recorded SQL as the replay runs it (the business keys' insert checked)."""
    return [
        (kind, sql.replace(_UNCHECKED_KEYS, _CHECKED_KEYS, 1) if kind == "exec" else sql, data)
        for kind, sql, data in ops
    ]


def record(batches):
    """Ingest each (first event_id, body) in this process; {first event_id: the batch's SQL as
    the replay runs it}, and the seconds the ingest took."""
    from django.utils import timezone

    from tracing.ingest.compiled import split_batch
    from tracing.ingest.pipeline import ingest_events

    recorded, seconds = {}, 0.0
    for first, body in batches:
        started = time.perf_counter()
        with recording([]) as ops:
            result = ingest_events(split_batch(body), now=timezone.now())
        seconds += time.perf_counter() - started
        if result.rejected:
            raise RuntimeError(f"the stream has rejected events: {result.rejected[:1]}")
        recorded[first] = for_replay(ops)
    return recorded, seconds


def loosen(pg, *, without_transaction_indexes):
    """Drop the foreign keys among the tracing tables (and, if asked, the transaction table's
    secondary indexes) of the replay database; return what was dropped."""
    dropped = []
    for table, name in pg.execute(
        "SELECT conrelid::regclass::text, conname FROM pg_constraint "
        "WHERE contype = 'f' AND conrelid::regclass::text LIKE 'tracing\\_%'"
    ).fetchall():
        pg.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        dropped.append(name)
    if without_transaction_indexes:
        for (name,) in pg.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'tracing_transaction' AND "
            "indexname NOT IN ('tracing_transaction_pkey', 'uniq_txn_plant_flow_corr')"
        ).fetchall():
            pg.execute(f'DROP INDEX "{name}"')
            dropped.append(name)
    return dropped


def replay(env, args, api_key, bodies, batches):
    """POST every body to gunicorn serving ceiling_app; (seconds, post_all totals)."""
    with tempfile.NamedTemporaryFile(prefix="bench-ceiling-", suffix=".pickle") as file:
        pickle.dump(batches, file)
        file.flush()
        server = Gunicorn(
            env | {"CEILING_OPS": file.name},
            workers=args.workers,
            app="tests.bench.ceiling_app:app",
        ).start()
        try:
            return ingest.post_all(server.url, api_key, bodies, args.connections)
        finally:
            server.stop()


def report(f):
    return "\n".join(
        (
            f"ceiling  {f['events']:,} events in {f['batch_size']:,}-event batches, "
            f"{f['workers']} gunicorn workers, {f['connections']} client connections: each "
            "batch's recorded SQL replayed, no per-event Python",
            f"  recorded ingest  : {f['recorded_events_per_s']:,} events/s "
            "(in this process, one batch at a time, while recording)",
            f"  replayed over HTTP: {f['events_per_s']:,} events/s  ({f['seconds']} s, "
            f"{f['stored']:,} stored, {f['retries']} retries, {f['failed_batches']} failed)",
            f"  raw COPY indexed : {f['copy_rows_per_s']:,} rows/s  "
            f"(median of {', '.join(f'{r:,}' for r in f['copy_rows_per_s_runs'])})",
            f"  ceiling ratio    : {f['ratio']:.2f} of the indexed COPY (issue 14's target "
            f">= {TARGET_RATIO} is for the hub's own ingest: tests.bench.run)",
            f"  replay database  : without {len(f['dropped'])} of its foreign keys and indexes "
            "(names in the JSON)",
        )
    )


def main(argv=None):
    args = parse_args(argv)
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    env = server_env(url) | {"INGEST_CORRELATION": "request"}
    log(f"recreating {url} and recording {args.events:,} events' SQL")
    recreate_database(url)
    api_key = setup_django(env)
    stream = EventStream(args.events)
    events = stream.take(iter(stream), args.events)
    bodies = ingest.serialize(events, args.batch_size)
    firsts = [e["event_id"] for e in events[:: args.batch_size]]  # as ceiling_app finds a batch
    batches, recorded_seconds = record(zip(firsts, bodies, strict=True))
    del events

    from django.db import connection

    from tracing.ingest.pipeline import EVENT_COLUMNS

    connection.close()
    log("recreating the database for the replay")
    recreate_database(url)
    setup_django(env)  # the same catalog and plant ids as the recording's
    connection.close()
    with psql(url) as pg:
        dropped = loosen(pg, without_transaction_indexes=args.without_transaction_indexes)
        pg.execute("CHECKPOINT")
        log(f"replaying {len(bodies)} batches over HTTP")
        seconds, totals = replay(env, args, api_key, bodies, batches)
        stored = ingest.count_events(pg)
        log("raw COPY of the same rows into a table with the event table's indexes")
        copied, copy_seconds, copy_runs = ingest.steady_copy(pg, EVENT_COLUMNS, indexed=True)
    figures = {
        "events": args.events,
        "batch_size": args.batch_size,
        "workers": args.workers,
        "connections": args.connections,
        "recorded_events_per_s": round(args.events / recorded_seconds),
        "seconds": round(seconds, 2),
        "events_per_s": round(stored / seconds),
        "stored": stored,
        "retries": totals["retries"],
        "failed_batches": totals["failed_batches"],
        "copy_rows_per_s": round(copied / copy_seconds),
        "copy_rows_per_s_runs": copy_runs,
        "ratio": round((stored / seconds) / (copied / copy_seconds), 3),
        "dropped": dropped,
    }
    print(report(figures), flush=True)
    print(orjson.dumps({"bench": "ingest ceiling", **figures}).decode(), flush=True)
    return 0 if stored == args.events and not totals["failed_batches"] else 1


if __name__ == "__main__":
    run_main(main)
