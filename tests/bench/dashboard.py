"""Dashboard benchmark: server time of the plant overview and its partials on PostgreSQL.

    .venv/bin/python -m tests.bench.dashboard [--transactions N] [--requests 50]
                                              [--history-days 90] [--reuse]

Drops and recreates BENCH_DASHBOARD_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/
integration_hub_bench_dash), loads N transactions (about 3.5 events each, spread over 28 days
ending now) with tracing.ingest.ingest_events in batches of 5,000, brings outcomes, rollups
and SLO statuses up to date, then times the pages in-process with django.test.Client: p50/p95
over --requests requests each, and the SQL queries per page. Progress goes to stderr; the
report to stdout, ending with one line of JSON. Target: p95 under 150 ms. Then, on the same
data, the SLO figures of tests.bench.slo.measure (evaluation < 1 s, 7-day series < 100 ms).
With --reuse it skips the load and times the pages on the database an earlier run left.
With --history-days D the loaded span is copied back in time inside PostgreSQL until the data
covers D days (tests/bench/history.py: 90 days of 1M transactions is about 11M events in
minutes, where ingesting them would take an hour), so the same pages are timed over a longer
history with the same traffic per day.
"""

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

import orjson
import psycopg

from tests.bench import history, slo
from tests.bench.common import recreate_database, server_env
from tests.bench.common import setup_django as common_setup_django

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/integration_hub_bench_dash"
EVENTS_PER_TRANSACTION = 3.515  # tests.bench.common.EventStream, measured over 500,000 events
SPAN = timedelta(days=28)
TARGET_P95_MS = 150


def log(message):
    print(f"  .. {message}", file=sys.stderr, flush=True)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m tests.bench.dashboard", description=__doc__)
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=50, help="timed requests per page")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument(
        "--history-days",
        type=int,
        default=0,
        help="copy the loaded span back in time until the data covers this many days",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="time the pages on the database an earlier run loaded (refreshes its figures)",
    )
    return parser.parse_args(argv)


def setup_django(url, *, reuse=False):
    """Django in this process on the bench database, production mode; migrated and seeded
    unless `reuse` (the database already holds a loaded bench)."""
    env = server_env(url) | {
        "ALLOWED_HOSTS": "testserver",
        "HUB_VAR_DIR": tempfile.mkdtemp(prefix="bench-dash-var-"),
    }
    if reuse:
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
    else:
        common_setup_django(env)
    from django.test.utils import override_settings

    # Serve {% static %} without collectstatic (production uses the manifest storage).
    override_settings(
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
    ).enable()


def load(transactions, batch_size):
    """Ingest about `transactions` transactions' events ending now; return (events, seconds)."""
    from tests.bench.common import EventStream
    from tracing.ingest.pipeline import ingest_events

    total = int(transactions * EVENTS_PER_TRANSACTION)
    now = datetime.now(UTC)
    stream = EventStream(total, span=SPAN)
    # The stream's end wanders by an hour or two around start + SPAN: end it half an hour ago
    # and leave out what would lie in the future (the ingest API refuses it).
    stream.start = now - SPAN - timedelta(minutes=30)
    events, started, sent, future = iter(stream), time.monotonic(), 0, 0
    while sent + future < total:
        batch = stream.take(events, min(batch_size, total - sent - future))
        clock = datetime.now(UTC)
        kept = [e for e in batch if datetime.fromisoformat(e["occurred_at"]) <= clock]
        future += len(batch) - len(kept)
        if kept:
            result = ingest_events(kept, now=clock)
            if result.rejected:
                sys.exit(f"bench events rejected: {result.rejected[:3]}")
        sent += len(kept)
        if sent % (batch_size * 20) == 0 or sent + future == total:
            elapsed = time.monotonic() - started
            log(f"ingested {sent:,}/{total:,} events ({sent / elapsed:,.0f}/s)")
    if future:
        log(f"left out {future:,} events that would lie in the future")
    return sent, time.monotonic() - started


def evaluate():
    from django.utils import timezone

    from monitoring.slo import outcomes
    from monitoring.slo.evaluation import summarize_stuck
    from monitoring.slo.figures import evaluate_slos
    from tracing.transactions.stuck import mark_stuck

    started, now = time.monotonic(), timezone.now()
    mark_stuck(now)
    log("outcomes and rollups …")
    outcomes.refresh(now, progress=lambda n: n % 100_000 == 0 and log(f"outcomes: {n:,} items"))
    evaluate_slos(now)
    summarize_stuck(now)
    return time.monotonic() - started


def analyze(url):
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def people():
    from django.contrib.auth.models import Group, User

    from integration_hub.models import Plant, PlantMembership

    User.objects.filter(username__startswith="bench-").delete()
    supervisor = User.objects.create_user("bench-supervisor", password=secrets.token_hex(8))
    supervisor.groups.add(Group.objects.get(name="supervisor"))
    PlantMembership.objects.create(user=supervisor, plant=Plant.objects.get(code="P100"))
    admin = User.objects.create_user("bench-admin", password=secrets.token_hex(8), is_staff=True)
    return supervisor, admin


def time_page(client, url, requests, **headers):
    """(p50 ms, p95 ms, queries, bytes) of GET url."""
    for _ in range(3):  # warm caches and connections
        response = client.get(url, **headers)
        assert response.status_code == 200, (url, response.status_code)
    queries, response = count_queries(lambda: client.get(url, **headers))
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        client.get(url, **headers)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    p95 = timings[min(len(timings) - 1, int(round(0.95 * len(timings))) - 1)]
    return statistics.median(timings), p95, queries, len(response.content)


def count_queries(call):
    """(SQL statements run, result) of call(). CaptureQueriesContext reads 0 across a request:
    request_started resets the query log."""
    from django.db import connection

    seen = []

    def counter(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counter):
        result = call()
    return len(seen), result


def main(argv=None):
    args = parse_args(argv)
    url = os.environ.get("BENCH_DASHBOARD_DATABASE_URL", DEFAULT_URL)
    if not args.reuse:
        log(f"recreating {url}")
        recreate_database(url)
    setup_django(url, reuse=args.reuse)
    from django.test import Client
    from django.utils import timezone

    from tracing.models import TraceEvent, Transaction

    if args.reuse:
        events, load_s = TraceEvent.objects.count(), 0.0
    else:
        events, load_s = load(args.transactions, args.batch_size)
    if args.history_days:
        started = time.monotonic()
        added = history.extend(args.history_days, log=log)
        if added:
            log(f"history: {added:,} events copied in {time.monotonic() - started:.0f} s")
            events = TraceEvent.objects.count()
    eval_s = evaluate()
    analyze(url)
    count = Transaction.objects.count()
    day = Transaction.objects.filter(last_seen__gte=timezone.now() - timedelta(days=1)).count()
    supervisor, admin = people()
    htmx = {"HTTP_HX_REQUEST": "true"}
    slo_page = "/plants/P100/slos/order-release-latency/"
    success_page = "/plants/P100/slos/confirmation-success/"
    cases = [
        ("plant overview", supervisor, "/plants/P100/", {}),
        ("plant overview 1h partial", supervisor, "/plants/P100/?range=1h", htmx),
        ("plant overview partial (HTMX)", supervisor, "/plants/P100/", htmx),
        ("plant overview 7d partial", supervisor, "/plants/P100/?range=7d", htmx),
        ("plant overview 28d partial", supervisor, "/plants/P100/?range=28d", htmx),
        ("wall screen partial (HTMX)", supervisor, "/plants/P100/wall/", htmx),
        ("all plants (admin, 5 plants)", admin, "/", {}),
        ("all plants partial (HTMX)", admin, "/", htmx),
        ("SLO page (order release)", supervisor, f"{slo_page}", {}),
        ("SLO page 7d", supervisor, f"{slo_page}?range=7d", {}),
        ("SLO page 28d", supervisor, f"{slo_page}?range=28d", {}),
        ("SLO page 28d (confirmation success)", supervisor, f"{success_page}?range=28d", {}),
    ]
    results = []
    for name, user, page, headers in cases:
        client = Client()
        client.force_login(user)
        log(f"timing {name}")
        p50, p95, queries, size = time_page(client, page, args.requests, **headers)
        results.append(
            {"page": name, "url": page, "p50_ms": round(p50, 1), "p95_ms": round(p95, 1)}
            | {"queries": queries, "bytes": size}
        )
    print(
        f"dashboard  {count:,} transactions, {events:,} events "
        + (
            f"(load {load_s:.0f} s = {events / load_s:,.0f} events/s, evaluation {eval_s:.0f} s)"
            if load_s
            else f"(reused; evaluation {eval_s:.0f} s)"
        )
    )
    print(f"  {day:,} transactions active in the last 24 h (the default range)")
    print(f"  {'page':<34} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8} {'KiB':>6}  target")
    plant_pages = [r for r in results if r["url"].startswith("/plants/P100/")]
    for r in results:
        mark = ""
        if r in plant_pages:
            mark = "OK" if r["p95_ms"] < TARGET_P95_MS else "MISS"
        print(
            f"  {r['page']:<34} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['queries']:>8} "
            f"{r['bytes'] / 1024:>6.0f}  {mark}"
        )
    print(f"  target: p95 < {TARGET_P95_MS} ms for every page and partial of the plant")
    slo.measure()
    print(
        orjson.dumps(
            {
                "transactions": count,
                "events": events,
                "load_seconds": round(load_s, 1),
                "evaluation_seconds": round(eval_s, 1),
                "pages": results,
            }
        ).decode()
    )


if __name__ == "__main__":
    main()
