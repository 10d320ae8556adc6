"""`make bench`: ingestion and search figures on PostgreSQL behind gunicorn.

    .venv/bin/python -m tests.bench.run [--events N] [--search-events N] [--quick]
        [--correlation request|deferred|both] [--search-on URL]

Drops and recreates BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/
integration_hub_bench), so never point it at a database you want to keep. Prints a fixed-format
report, then one line of JSON. Progress goes to stderr.

Ingest runs once per correlation mode (INGEST_CORRELATION), each on its own gunicorn and its
own next --events of the stream: "request" folds in the request; "deferred" runs
`manage.py run_correlator` beside gunicorn and stops the clock when it has folded the last
event. --search-on URL times only search, on a database an earlier bench loaded (e.g. the
dashboard bench's 11M events), and drops nothing.
"""

import argparse
import os
import time
from datetime import UTC, datetime

import orjson

from tests.bench import ingest, search
from tests.bench.common import (
    DEFAULT_URL,
    EventStream,
    Gunicorn,
    fmt_int,
    log,
    psql,
    recreate_database,
    run_main,
    server_env,
    setup_django,
)
from tests.bench.processes import Background, manage

TARGET_RATIO, TARGET_PEAK_MB, TARGET_P95_MS = 0.33, 300, 50


def verdict(ok):
    return "OK" if ok else "MISS"


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m tests.bench.run", description=__doc__)
    parser.add_argument("--events", type=int, default=200_000, help="events sent over HTTP")
    parser.add_argument("--search-events", type=int, default=1_000_000, help="events for search")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20,000 / 100,000")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--requests", type=int, default=50, help="search requests per case")
    parser.add_argument(
        "--correlation", choices=("request", "deferred", "both"), default="both",
        help="INGEST_CORRELATION mode(s) to measure ingest in",
    )  # fmt: skip
    parser.add_argument("--search-on", metavar="URL", help="only time search on this database")
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.search_events = 20_000, 100_000
    return args


def runs(rates):
    return ", ".join(fmt_int(r) for r in rates)


def ingest_report(i):
    ok_resend = i["resend_new_rows"] == 0 and i["resend_duplicates"] == i["events"]
    lines = [
        f"ingest   {fmt_int(i['events'])} events in {fmt_int(i['batch_size'])}-event batches, "
        f"{i['workers']} gunicorn workers, {i['connections']} client connections "
        f"(~{i['mean_event_bytes']} B/event), correlation {i['correlation']}",
        f"  http ingest      : {fmt_int(i['events_per_s'])} events/s  ({i['seconds']:.1f} s, "
        f"{fmt_int(i['stored'])} stored, {i['rejected']} rejected, {i['retries']} retries)",
    ]
    if i["correlation"] == "deferred":
        lines += [
            f"    last 202 after {i['seconds_to_last_202']:.1f} s "
            f"({fmt_int(i['events_per_s_202'])} events/s), last event folded "
            f"{i['fold_tail_seconds']:.2f} s later; the rate above counts to the last fold",
            f"    503 'correlation behind, retry after 1 s': {fmt_int(i['told_to_wait'])} "
            "times (the sender waited and sent again)",
            f"    correlator queue: at most {fmt_int(i['max_queued'])} events, oldest waited at "
            f"most {i['max_wait_seconds']:.2f} s  (README promises <= 1 s)  "
            f"{verdict(i['max_wait_seconds'] <= 1.0)}",
        ]
    lines += [
        f"  raw COPY indexed : {fmt_int(i['copy_rows_per_s'])} rows/s  "
        f"({fmt_int(i['copy_rows'])} rows, 1 stream, the event table's indexes and constraints; "
        f"median of {runs(i['copy_rows_per_s_runs'])})",
        f"  raw COPY bare    : {fmt_int(i['bare_copy_rows_per_s'])} rows/s  "
        f"(same rows, no index or constraint; median of {runs(i['bare_copy_rows_per_s_runs'])})",
        f"  ratio            : {i['ratio']:.2f} of the indexed COPY (target >= {TARGET_RATIO})  "
        f"{verdict(i['ratio'] >= TARGET_RATIO)};  {i['ratio_bare']:.2f} of the bare one",
        f"  re-send {fmt_int(i['events']):<9}: {fmt_int(i['resend_new_rows'])} new rows, "
        f"{fmt_int(i['resend_duplicates'])} duplicates  ({i['resend_seconds']:.1f} s)  "
        f"{verdict(ok_resend)}",
        f"  web worker peak  : {i['worker_peak_mb']:.0f} MB  (max VmHWM of the workers, "
        f"target < {TARGET_PEAK_MB} MB)  {verdict(i['worker_peak_mb'] < TARGET_PEAK_MB)}",
    ]
    return "\n".join(lines)


def search_report(s):
    lines = [
        f"search   {fmt_int(s['events'])} events, {fmt_int(s['transactions'])} transactions, "
        f"{s['requests']} requests each, as a supervisor of all plants; server = in-process "
        f"DRF view incl. token auth + JSON render (http = via gunicorn, client included)",
        f"  top-up in-process: {fmt_int(round(s['topped_up'] / max(s['top_up_seconds'], 1e-9)))}"
        f" events/s  (ingest_events, 1 process, no HTTP; {fmt_int(s['topped_up'])} events)",
    ]
    names = {
        "by_key": "by business key ",
        "by_correlation_id": "by correlation id",
        "by_broad_key": "by material key",
        "search_box": "search box (q=)",
    }
    for case, label in names.items():
        c = s[case]
        lines.append(
            f"  {label:<17}: p50 {c['server_p50_ms']:.1f} ms  p95 {c['server_p95_ms']:.1f} ms  "
            f"(http p50 {c['http_p50_ms']:.1f} / p95 {c['http_p95_ms']:.1f} ms, "
            f"{c['mean_rows']:.0f} rows)  {verdict(c['server_p95_ms'] < TARGET_P95_MS)}"
        )
    lines.append(f"  (target p95 < {TARGET_P95_MS} ms)")
    return "\n".join(lines)


def ingest_in_mode(mode, env, args, api_key, pg, events, url):
    """Ingest `events` over HTTP with INGEST_CORRELATION=`mode` (and the correlator when
    deferred); the figures of ingest.run."""
    env = env | {"INGEST_CORRELATION": mode}
    server = Gunicorn(env, workers=args.workers).start()
    folder = Background("correlator", manage("run_correlator"), env) if mode == "deferred" else None
    try:
        if folder:  # sending starts once the correlator runs, not while its process starts
            folder.wait_for("Correlator running")
        return ingest.run(
            server=server,
            api_key=api_key,
            pg=pg,
            events=events,
            batch_size=args.batch_size,
            connections=args.connections,
            deferred=folder is not None,
            url=url,
        )
    finally:
        server.stop()
        if folder:
            folder.stop()


def load_average():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def search_only(args):
    """Search figures on an already loaded database (kept as it is)."""
    import django

    env = server_env(args.search_on)
    os.environ.update(env)
    django.setup()
    server = Gunicorn(env, workers=args.workers).start()
    try:
        with psql(args.search_on) as pg:
            figures = {"topped_up": 0, "top_up_seconds": 0}
            figures["events"], figures["transactions"] = pg.execute(
                "SELECT (SELECT count(*) FROM tracing_traceevent),"
                " (SELECT count(*) FROM tracing_transaction)"
            ).fetchone()
            figures.update(search.run(pg=pg, base_url=server.url, requests=args.requests))
    finally:
        server.stop()
    print(search_report(figures), flush=True)
    print(orjson.dumps({"bench": "search", "search": figures}).decode(), flush=True)
    return 0


def main(argv=None):
    args = parse_args(argv)
    if args.search_on:
        return search_only(args)
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    started = time.perf_counter()
    log(f"recreating {url}")
    recreate_database(url)
    env = server_env(url)
    api_key = setup_django(env)
    modes = ("request", "deferred") if args.correlation == "both" else (args.correlation,)
    # Sized so that every mode's events and the search top-up lie in the past.
    stream = EventStream(max(args.events * len(modes), args.search_events))
    events_iter = iter(stream)
    log(f"generating {args.events:,} events")
    events = stream.take(events_iter, args.events)
    summary = {
        "bench": "ingest+search",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "args": vars(args),
        "cpus": os.cpu_count(),
        "load_at_start": load_average(),
    }
    status, summary["ingest"] = 0, []
    with psql(url) as pg:
        for n, mode in enumerate(modes):
            if n:
                log(f"generating the next {args.events:,} events")
                events = stream.take(events_iter, args.events)
            figures = ingest_in_mode(mode, env, args, api_key, pg, events, url)
            summary["ingest"].append(figures)
            print(ingest_report(figures), flush=True)
        del events
    server = Gunicorn(env, workers=args.workers).start()
    try:
        with psql(url) as pg:
            try:
                figures = search.top_up(events_iter, pg, args.search_events, args.batch_size)
                figures["events"], figures["transactions"] = pg.execute(
                    "SELECT (SELECT count(*) FROM tracing_traceevent),"
                    " (SELECT count(*) FROM tracing_transaction)"
                ).fetchone()
                figures.update(search.run(pg=pg, base_url=server.url, requests=args.requests))
            except Exception as exc:  # keep the ingest figures; say what broke
                print(f"search   FAILED: {type(exc).__name__}: {exc}", flush=True)
                summary["search_error"] = f"{type(exc).__name__}: {exc}"
                status = 1
            else:
                summary["search"] = figures
                print(search_report(figures), flush=True)
    finally:
        server.stop()
    summary["load_at_end"] = load_average()
    summary["total_seconds"] = round(time.perf_counter() - started, 1)
    print(
        f"machine  {summary['cpus']} CPUs, load average {summary['load_at_start']:.1f} at start, "
        f"{summary['load_at_end']:.1f} at end (client, gunicorn and PostgreSQL share them)"
    )
    print(orjson.dumps(summary).decode(), flush=True)
    return status


if __name__ == "__main__":
    run_main(main)
