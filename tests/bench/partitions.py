"""Event partitions at scale: `python -m tests.bench.partitions [--events N] [--days D]`.

Loads N events (default 1,000,000) received over the last D days (default 95) into the daily
partitions of a fresh PostgreSQL database (BENCH_PARTITIONS_DATABASE_URL, else
BENCH_DATABASE_URL: dropped and recreated), generated server-side with their transactions and
ledger rows; 1 % of transactions stay open, payloads only on the last 30 days (what daily
retention leaves). Then times `apply_retention`, which drops the days past 90 whole (target
< 1 s a partition), and, for comparison, deleting one day's events row by row (rolled back).
"""

import argparse
import os
import re
import statistics
import time
from datetime import UTC, datetime, timedelta

import psycopg

from tests.bench.common import BenchError, log, psql, recreate_database, server_env, setup_django

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/integration_hub_bench_partitions"
TARGET_SECONDS = 1.0
EVENTS_PER_TRANSACTION = 4
CHUNK = 50_000  # transactions per INSERT, for progress

TRANSACTIONS = """
INSERT INTO tracing_transaction (flow_id, correlation_id, plant_id, state, business_keys,
    first_seen, last_seen, first_event_id, milestones, milestones_last_ok, milestone_systems,
    failure_step, failure_event_id, event_count, completed_at, stuck_at, updated_at)
SELECT f.id, 'PO-' || g, p.ids[1 + g %% array_length(p.ids, 1)],
    CASE WHEN g %% 100 = 0 THEN 'in_flight' ELSE 'completed' END,
    jsonb_build_object('order', g::text), t, t + interval '3 minutes', 'erp-' || g || '-1',
    '{}', '{}', '{}', '', '', 4, CASE WHEN g %% 100 = 0 THEN NULL ELSE t + interval '3 minutes' END,
    t + interval '4 hours', t
FROM generate_series(%(first)s::bigint, %(last)s::bigint) g
CROSS JOIN (SELECT id FROM integration_hub_flow WHERE code = 'order_release') f
CROSS JOIN (SELECT array_agg(id ORDER BY id) AS ids FROM integration_hub_plant) p
CROSS JOIN LATERAL (SELECT %(start)s::timestamptz + (g - 1) * %(gap)s::interval AS t) at
"""
EVENTS = """
INSERT INTO tracing_traceevent (event_id, transaction_id, flow_id, correlation_id, step,
    source_id, target_id, plant_id, status, occurred_at, received_at, business_keys,
    error_class, error_code, error_message, payload, attributes)
SELECT 'erp-' || substr(x.correlation_id, 4) || '-' || k, x.id, x.flow_id, x.correlation_id,
    (ARRAY['released', 'received', 'acknowledged', 'acknowledged'])[k], s.erp, s.mes,
    x.plant_id, 'ok', x.first_seen + (k - 1) * interval '1 minute',
    x.first_seen + (k - 1) * interval '1 minute' + interval '2 seconds', x.business_keys,
    '', '', '',
    CASE WHEN k = 1 AND x.first_seen > now() - interval '30 days' THEN jsonb_build_object(
        'ProductionOrder', jsonb_build_object('ID', x.correlation_id, 'Material', 'FG-4711',
        'Routing', 'R-4711-01', 'Quantity', 250, 'Text', repeat('routing step ', 30))) END,
    NULL
FROM tracing_transaction x CROSS JOIN generate_series(1, 4) k
CROSS JOIN (SELECT (SELECT id FROM integration_hub_system WHERE code = 'ERP') AS erp,
                   (SELECT id FROM integration_hub_system WHERE code = 'MES') AS mes) s
WHERE x.id BETWEEN %(first)s AND %(last)s
"""


def load(pg, *, events, days):
    """Transactions and their events, spread evenly over `days` up to now; ledger rows too."""
    from tracing.partitions.ensure import ensure_partitions

    now = datetime.now(UTC)
    start = now - timedelta(days=days)
    created = ensure_partitions(now=now, unit="day", since=start)
    log(f"{len(created)} daily partitions created")
    transactions = events // EVENTS_PER_TRANSACTION
    gap = timedelta(days=days) / transactions
    started = time.monotonic()
    for first in range(1, transactions + 1, CHUNK):
        last = min(first + CHUNK - 1, transactions)
        values = {"first": first, "last": last, "start": start, "gap": gap}
        pg.execute(TRANSACTIONS, values)
        pg.execute(EVENTS, values)
        log(f"  {last * EVENTS_PER_TRANSACTION:,} events ({time.monotonic() - started:.0f} s)")
    pg.execute(
        "INSERT INTO tracing_eventledger (event_id, received_at) "
        "SELECT event_id, received_at FROM tracing_traceevent"
    )
    log("VACUUM ANALYZE")
    pg.execute("VACUUM ANALYZE")
    return time.monotonic() - started


def row_by_row_day(pg, day):
    """Seconds to delete one day's events with DELETE (the batched purge's statement, all at
    once), rolled back: what a partition drop saves."""
    with pg.transaction():
        started = time.perf_counter()
        cur = pg.execute(
            "DELETE FROM tracing_traceevent WHERE received_at >= %s AND received_at < %s",
            [day, day + timedelta(days=1)],
        )
        elapsed, rows = time.perf_counter() - started, cur.rowcount
        raise psycopg.Rollback()
    return rows, elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.bench.partitions", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=95)
    args = parser.parse_args(argv)
    if args.days <= 91:
        raise BenchError("--days must be more than 91, so that some days are past retention")
    url = os.environ.get("BENCH_PARTITIONS_DATABASE_URL") or os.environ.get(
        "BENCH_DATABASE_URL", DEFAULT_URL
    )
    recreate_database(url)
    setup_django(server_env(url))
    from monitoring.retention.run import apply_retention

    pg = psql(url)
    log(f"loading {args.events:,} events over {args.days} days")
    load_s = load(pg, events=args.events, days=args.days)
    stored = pg.execute("SELECT count(*) FROM tracing_traceevent").fetchone()[0]
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(50)
    log("one day deleted row by row (rolled back)")
    day_rows, day_s = row_by_row_day(pg, day)

    notes = []
    log("apply_retention --dry-run")
    apply_retention(dry_run=True, note=lambda purge, text: notes.append(text))
    log("apply_retention")
    dropped_notes = []
    started = time.monotonic()
    counts = apply_retention(note=lambda purge, text: dropped_notes.append(text))
    run_s = time.monotonic() - started
    times = [float(m[1]) for m in (re.search(r" in ([0-9.]+) s$", t) for t in dropped_notes) if m]
    left = pg.execute("SELECT count(*) FROM tracing_traceevent").fetchone()[0]

    print(f"partitions  {stored:,} events over {args.days} days in daily partitions "
          f"(loaded server-side in {load_s:.0f} s)")  # fmt: skip
    for text in dropped_notes:
        print(f"  {text}")
    if not times:
        raise BenchError("apply_retention dropped no partition")
    worst = max(times)
    print(
        f"  drop per partition : mean {statistics.mean(times):.3f} s, max {worst:.3f} s "
        f"(target < {TARGET_SECONDS:.0f} s)  {'OK' if worst < TARGET_SECONDS else 'MISS'}"
    )
    print(
        f"  apply_retention    : {counts['events']:,} events removed in {run_s:.1f} s "
        f"(every kind); {left:,} events left"
    )
    print(f"  row by row, one day: {day_rows:,} events in {day_s:.2f} s (DELETE, rolled back)")
    print(f"  dry run listed {sum('would drop' in t for t in notes)} partitions")


if __name__ == "__main__":
    main()
