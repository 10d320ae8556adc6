"""SLO evaluation at scale: `python -m tests.bench.slo [--transactions N]`.

Loads N transactions (default 1,000,000, about 3.5 events each) into a fresh PostgreSQL
database through the real ingest path, builds outcomes and rollups, then times:
- evaluating every default SLO for every plant from rollups (target < 1 s);
- a 7-day hourly series plus percentiles for one flow and plant (target < 100 ms);
- the same evaluation done naively over raw events, for comparison.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta

from tests.bench.common import EventStream, recreate_database, server_env, setup_django

URL = os.environ.get(
    "BENCH_SLO_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/integration_hub_bench_slo"
)
BATCH = 5000
# Raw-event version of each transaction SLO: (slug, flow, start step, end steps, threshold s).
NAIVE_LATENCY = [
    ("order-release-latency", "order_release", "released", ("acknowledged",), 60),
    ("posting-delay", "production_confirmation", "confirmed", ("posted",), 300),
    ("shipment-posting-delay", "shipment_confirmation", "shipped", ("posted",), 600),
    ("stuck-quality-holds", "quality_hold", "hold_applied", ("released", "scrapped"), 14400),
]


def log(message):
    print(message, file=sys.stderr, flush=True)


def load(transactions):
    from tracing.ingest.pipeline import ingest_events
    from tracing.models import Transaction

    stream = EventStream(int(transactions * 3.3), span=timedelta(days=21))
    events = iter(stream)
    started, sent, loaded = time.monotonic(), 0, 0
    while loaded < transactions:
        for _ in range(20):
            batch = stream.take(events, BATCH)
            ingest_events(batch)
            sent += len(batch)
        loaded = Transaction.objects.count()
        rate = sent / (time.monotonic() - started)
        log(f"  {sent:,} events, {loaded:,} transactions ({rate:,.0f}/s)")
    return sent, time.monotonic() - started


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def naive_evaluation(now):
    """Each default SLO computed straight from trace events (what rollups save us)."""
    from django.db import connection

    window = now - timedelta(days=28)
    with connection.cursor() as cursor:
        for _slug, flow, start, ends, threshold in NAIVE_LATENCY:
            cursor.execute(
                """
                SELECT plant_id, count(*) FILTER (WHERE ended - began <= %s * interval '1 second'),
                       count(*)
                FROM (SELECT e.transaction_id, e.plant_id,
                             min(e.occurred_at) FILTER (WHERE e.step = %s AND e.status = 'ok')
                                 AS began,
                             min(e.occurred_at) FILTER (WHERE e.step = ANY(%s) AND e.status = 'ok')
                                 AS ended
                      FROM tracing_traceevent e JOIN integration_hub_flow f ON f.id = e.flow_id
                      WHERE f.code = %s AND e.occurred_at >= %s
                      GROUP BY e.transaction_id, e.plant_id) x
                WHERE began IS NOT NULL
                  AND (ended IS NOT NULL OR began + %s * interval '1 second' <= %s)
                GROUP BY plant_id
                """,
                [threshold, start, list(ends), flow, window, threshold, now],
            )
            cursor.fetchall()
        cursor.execute(
            """
            SELECT e.plant_id,
                   count(*) FILTER (WHERE bool_and_ok), count(*)
            FROM (SELECT transaction_id, plant_id,
                         bool_and(status NOT IN ('failed', 'rejected')) bool_and_ok
                  FROM tracing_traceevent e JOIN integration_hub_flow f ON f.id = e.flow_id
                  WHERE f.code = 'production_confirmation' AND e.occurred_at >= %s
                  GROUP BY transaction_id, plant_id) e
            GROUP BY e.plant_id
            """,
            [window],
        )
        cursor.fetchall()


def measure():
    """Time SLO evaluation, a 7-day series and the naive raw-event version; print the report."""
    from django.utils import timezone

    from integration_hub.models import Plant
    from monitoring.models import SLO, Rollup
    from monitoring.slo.figures import evaluate_slos, latency_percentiles, series
    from tracing.models import TraceEvent, Transaction

    now = timezone.now()
    txns, stored, rollups = (
        Transaction.objects.count(),
        TraceEvent.objects.count(),
        Rollup.objects.count(),
    )
    evaluation = timed(lambda: evaluate_slos(now), 7)
    slo = SLO.objects.get(slug="order-release-latency")
    plant = Plant.objects.order_by("code").first()

    def seven_days():
        since = now - timedelta(days=7)
        series(slo, plant_id=plant.id, since=since, until=now)
        latency_percentiles(slo, plant_id=plant.id, since=since, until=now)

    weekly = timed(seven_days, 21)
    naive = timed(lambda: naive_evaluation(now), 3)
    eval_p50, eval_max = statistics.median(evaluation), max(evaluation)
    weekly_p95 = sorted(weekly)[int(0.95 * len(weekly)) - 1]
    naive_p50 = statistics.median(naive)
    print(f"slo      {txns:,} transactions, {stored:,} events, {rollups:,} rollup rows")
    print(
        f"  evaluate all SLOs        : p50 {eval_p50:.0f} ms  max {eval_max:.0f} ms"
        f"  (target < 1000 ms)  {'OK' if eval_max < 1000 else 'MISS'}"
    )
    print(
        f"  7-day series + pctiles   : p50 {statistics.median(weekly):.1f} ms"
        f"  p95 {weekly_p95:.1f} ms  (target < 100 ms)  {'OK' if weekly_p95 < 100 else 'MISS'}"
    )
    print(
        f"  naive over raw events    : p50 {naive_p50:.0f} ms  ({naive_p50 / eval_p50:.0f}x slower)"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.bench.slo", description=__doc__)
    parser.add_argument("--transactions", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    recreate_database(URL)
    setup_django(server_env(URL))
    from django.db import connection

    from monitoring.slo import outcomes

    log(f"loading {args.transactions:,} transactions through tracing.ingest ...")
    events, load_s = load(args.transactions)
    log("building outcomes and rollups ...")
    t0 = time.monotonic()
    outcomes.rebuild(progress=lambda n: log(f"  {n:,} items") if n % 100_000 == 0 else None)
    rebuild_s = time.monotonic() - t0
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"load     {events / load_s:,.0f} events/s in-process ({load_s:.0f} s)")
    print(f"rebuild  rollups from raw data in {rebuild_s:.1f} s")
    measure()


if __name__ == "__main__":
    main()
