"""Where an ingest request spends its time, per 1,000 events, on PostgreSQL.

    .venv/bin/python -m tests.bench.profile_ingest [--batches N] [--batch-size N] [--warm-up N]

Recreates BENCH_DATABASE_URL (as tests.bench.run does), then POSTs batches of the bench's
realistic event stream to POST /api/v1/events through Django's WSGI handler in this process
(middleware, URL routing and the view included; no socket, no gunicorn, one request at a time).
Each stage is a function of the request path wrapped with a timer; a stage's time excludes the
stages it calls, and whatever the request spent outside every stage is reported as
"WSGI + middleware". Prints the median and mean per stage in ms per 1,000 events over the
batches after the warm-up, with the CPU this process and the database backend serving it
spent in each (the backend's from /proc/PID/schedstat: the bench's PostgreSQL runs on this
machine), the SQL round trips per batch, then one line of JSON.
"""

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import orjson

from tests.bench.common import (
    DEFAULT_URL,
    BenchError,
    EventStream,
    log,
    pids_where,
    recreate_database,
    run_main,
    server_env,
    setup_django,
)

# (label, module, attribute) in request order; attributes missing from the code are skipped.
STAGES = (
    ("HTTP: API key lookup", "tracing.ingest.http", "api_key_from"),
    ("HTTP: body read (+gunzip)", "tracing.ingest.http", "read_body"),
    ("HTTP: JSON decode + batch shape", "tracing.ingest.http", "parse_events"),
    ("HTTP: rate limit", "tracing.ingest.http", "spend_for_key"),
    ("catalog (stamp; read when changed)", "tracing.ingest.contract", "Catalog.current"),
    ("validation", "tracing.ingest.pipeline", "validate_events"),
    ("event ids claimed (ledger)", "tracing.ingest.pipeline", "claim_event_ids"),
    ("transactions present (read)", "tracing.ingest.pipeline", "present"),
    ("transactions read + locked", "tracing.ingest.pipeline", "select_locked"),
    ("transaction lock/create", "tracing.ingest.pipeline", "lock_transactions"),
    ("fold", "tracing.ingest.pipeline", "fold_events"),
    ("settle (+ downtime calendar)", "tracing.ingest.pipeline", "settle_transactions"),
    ("new transactions inserted", "tracing.ingest.pipeline", "insert_transactions"),
    ("transaction update", "tracing.ingest.pipeline", "update_transactions"),
    ("event COPY", "tracing.ingest.pipeline", "copy_events"),
    ("event insert (SQLite)", "tracing.ingest.pipeline", "insert_events"),
    ("business keys", "tracing.ingest.pipeline", "insert_business_keys"),
    ("dead letters", "tracing.ingest.pipeline", "dead_letters_for_events"),
    ("superseded marking", "tracing.ingest.pipeline", "mark_superseded_of"),
    ("store_events rest", "tracing.ingest.pipeline", "store_events"),
    ("PostgreSQL store rest", "tracing.ingest.pipeline", "_pg_store_events"),
    ("BEGIN + COMMIT", "tracing.ingest.pipeline", "with_deadlock_retry"),
    ("ingest_events rest", "tracing.ingest.http", "ingest_events"),
    ("metrics counters", "tracing.ingest.pipeline", "count_outcomes"),
    ("HTTP: API key touch", "integration_hub.models", "ApiKey.touch"),
    ("HTTP: response JSON", "tracing.ingest.http", "_json"),
)
REST = "HTTP: WSGI, middleware, routing, view"


class StageClock:
    """Exclusive wall time, CPU time of this process and SQL round trips per stage: a stage's
    own, minus those of the stages it calls."""

    def __init__(self):
        self.stack = []  # [label, children's wall, children's cpu, children's server cpu]
        self.wall, self.cpu, self.server, self.trips = {}, {}, {}, {}
        self.server_cpu = lambda: 0.0  # the database backend's CPU seconds, once connected

    def wrap(self, label, func):
        clock = self

        def timed(*args, **kwargs):
            frame = [label, 0.0, 0.0, 0.0]
            clock.stack.append(frame)
            wall, cpu, server = time.perf_counter(), time.thread_time(), clock.server_cpu()
            try:
                return func(*args, **kwargs)
            finally:
                wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
                server = clock.server_cpu() - server
                clock.stack.pop()
                clock.wall[label] = clock.wall.get(label, 0.0) + wall - frame[1]
                clock.cpu[label] = clock.cpu.get(label, 0.0) + cpu - frame[2]
                clock.server[label] = clock.server.get(label, 0.0) + server - frame[3]
                if clock.stack:
                    clock.stack[-1][1] += wall
                    clock.stack[-1][2] += cpu
                    clock.stack[-1][3] += server

        timed.__wrapped__ = func
        return timed

    def round_trip(self):
        label = self.stack[-1][0] if self.stack else REST
        self.trips[label] = self.trips.get(label, 0) + 1

    def take(self):
        taken = self.wall, self.cpu, self.server, self.trips
        self.wall, self.cpu, self.server, self.trips = {}, {}, {}, {}
        return taken


def schedstat_seconds(pid):
    """CPU seconds a process has run (/proc/PID/schedstat, nanoseconds; Linux)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


def postgres_pids():
    """Every process named postgres on this machine (the bench's server runs here)."""
    return pids_where(lambda pid: Path(f"/proc/{pid}/comm").read_text().strip() == "postgres")


def total_seconds(pids):
    total = 0.0
    for pid in pids:
        try:
            total += schedstat_seconds(pid)
        except OSError:
            continue
    return total


def install(clock):
    """Wrap every stage that exists in this code; return the labels wrapped, in order."""
    import importlib

    labels = []
    for label, module_name, attribute in STAGES:
        owner = importlib.import_module(module_name)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        if not hasattr(owner, name):
            continue
        raw = owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name)
        if isinstance(raw, classmethod):
            setattr(owner, name, classmethod(clock.wrap(label, raw.__func__)))
        else:
            setattr(owner, name, clock.wrap(label, raw))
        if label not in labels:
            labels.append(label)
    return labels


@contextmanager
def counting_round_trips(clock):
    """Count statements and COPYs sent on psycopg cursors (Django's and the raw ones)."""
    import psycopg

    execute, copy = psycopg.Cursor.execute, psycopg.Cursor.copy

    def counted_execute(self, *args, **kwargs):
        clock.round_trip()
        return execute(self, *args, **kwargs)

    def counted_copy(self, *args, **kwargs):
        clock.round_trip()
        return copy(self, *args, **kwargs)

    psycopg.Cursor.execute, psycopg.Cursor.copy = counted_execute, counted_copy
    try:
        yield
    finally:
        psycopg.Cursor.execute, psycopg.Cursor.copy = execute, copy


def post(app, body, api_key):
    """One POST /api/v1/events through the WSGI handler; return (status, parsed body)."""
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/events",
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_AUTHORIZATION": f"Bearer {api_key}",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"] = int(status.split()[0])

    chunks = app(environ, start_response)
    data = b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    return answer["status"], orjson.loads(data)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.profile_ingest", description=__doc__
    )
    parser.add_argument("--batches", type=int, default=40, help="batches profiled")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--warm-up", type=int, default=5, help="batches sent before profiling")
    parser.add_argument(
        "--cprofile", metavar="FILE", help="also run cProfile over the profiled batches, "
        "write its stats to FILE and print the top functions by own time",
    )  # fmt: skip
    return parser.parse_args(argv)


def report(labels, batches, batch_size):
    """The table (ms per 1,000 events: median wall, mean wall, mean CPU of this process and of
    the database backend, round trips) and a summary for JSON; `batches` holds a dict each
    (per-stage walls, cpus, servers, trips; the request's wall, cpu, server, background)."""
    scale = 1000.0 / batch_size * 1000.0  # seconds per batch → ms per 1,000 events
    rows = []
    for label in [*labels, REST]:
        walls = [b["walls"].get(label, 0.0) * scale for b in batches]
        cpus = [b["cpus"].get(label, 0.0) * scale for b in batches]
        servers = [b["servers"].get(label, 0.0) * scale for b in batches]
        trips = [b["trips"].get(label, 0) for b in batches]
        rows.append(
            (label, statistics.median(walls), statistics.mean(walls), statistics.mean(cpus),
             statistics.mean(servers), statistics.median(trips))
        )  # fmt: skip
    walls = [b["wall"] * scale for b in batches]
    mean_wall = statistics.mean(walls)
    mean_cpu = statistics.mean(b["cpu"] * scale for b in batches)
    mean_server = statistics.mean(b["server"] * scale for b in batches)
    background = statistics.mean(b["background"] * scale for b in batches)
    width = max(len(row[0]) for row in rows)
    lines = [
        f"ingest profile: {len(batches)} batches of {batch_size:,} events, PostgreSQL, "
        "in-process WSGI, one request at a time; ms per 1,000 events",
        f"  {'stage':<{width}}  {'median':>7}  {'mean':>7}  {'share':>5}  {'cpu':>7}  "
        f"{'pg cpu':>7}  trips",
    ]
    for label, median, mean, cpu, server, trips in rows:
        lines.append(
            f"  {label:<{width}}  {median:7.2f}  {mean:7.2f}  {100 * mean / mean_wall:4.1f}%"
            f"  {cpu:7.2f}  {server:7.2f}  {trips:5.0f}"
        )
    trips = statistics.median(sum(b["trips"].values()) for b in batches)
    lines.append(
        f"  {'request total':<{width}}  {statistics.median(walls):7.2f}  {mean_wall:7.2f}"
        f"  {100.0:4.0f}%  {mean_cpu:7.2f}  {mean_server:7.2f}  {trips:5.0f}"
    )
    lines.append(
        f"  wall = elapsed; cpu = this process (the web worker's share); pg cpu = the database "
        f"backend serving it. PostgreSQL's other processes (WAL writer, checkpointer, …) used "
        f"{background:.2f} ms more. CPU per 1,000 events in all: "
        f"{mean_cpu + mean_server + background:.1f} ms. One sender: {1e6 / mean_wall:,.0f} "
        "events/s."
    )
    return "\n".join(lines), {
        "batches": len(batches),
        "batch_size": batch_size,
        "stages": {
            label: {
                "median_ms": round(median, 2),
                "mean_ms": round(mean, 2),
                "cpu_ms": round(cpu, 2),
                "pg_cpu_ms": round(server, 2),
                "round_trips": trips,
            }
            for label, median, mean, cpu, server, trips in rows
        },  # fmt: skip
        "request_ms": round(mean_wall, 2),
        "request_cpu_ms": round(mean_cpu, 2),
        "request_pg_cpu_ms": round(mean_server, 2),
        "pg_background_cpu_ms": round(background, 2),
        "round_trips": trips,
    }


def main(argv=None):
    args = parse_args(argv)
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    log(f"recreating {url}")
    recreate_database(url)
    api_key = setup_django(server_env(url))
    from integration_hub.wsgi import application as app  # as gunicorn runs it

    total = (args.warm_up + args.batches) * args.batch_size
    stream = EventStream(total)
    events = stream.take(iter(stream), total)
    bodies = [
        orjson.dumps({"events": events[i : i + args.batch_size]})
        for i in range(0, total, args.batch_size)
    ]
    del events
    clock = StageClock()
    labels = install(clock)
    log(f"warm-up: {args.warm_up} batches")
    for body in bodies[: args.warm_up]:
        status, answer = post(app, body, api_key)
        if status != 202 or answer["rejected"]:
            raise BenchError(f"warm-up batch answered {status}: {str(answer)[:300]}")
    from django.db import connection

    backend = connection.connection.info.backend_pid  # connected by the warm-up; kept open
    others = [pid for pid in postgres_pids() if pid != backend]
    clock.server_cpu = lambda: schedstat_seconds(backend)
    log(f"profiling {args.batches} batches of {args.batch_size:,}")
    batches = []
    profiler = cProfile.Profile() if args.cprofile else None
    with counting_round_trips(clock):
        if profiler:
            profiler.enable()
        for body in bodies[args.warm_up :]:
            clock.take()
            background = total_seconds(others)
            wall, cpu, server = time.perf_counter(), time.thread_time(), clock.server_cpu()
            status, answer = post(app, body, api_key)
            wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
            server = clock.server_cpu() - server
            background = total_seconds(others) - background
            if status != 202 or answer["rejected"]:
                raise BenchError(f"batch answered {status}: {str(answer)[:300]}")
            walls, cpus, servers, trips = clock.take()
            walls[REST] = wall - sum(walls.values())
            cpus[REST] = cpu - sum(cpus.values())
            servers[REST] = server - sum(servers.values())
            batches.append(
                dict(walls=walls, cpus=cpus, servers=servers, trips=trips, wall=wall, cpu=cpu,
                     server=server, background=background)
            )  # fmt: skip
        if profiler:
            profiler.disable()
    if profiler:
        profiler.dump_stats(args.cprofile)
        pstats.Stats(args.cprofile, stream=sys.stderr).sort_stats("tottime").print_stats(30)
    text, summary = report(labels, batches, args.batch_size)
    print(text, flush=True)
    print(orjson.dumps(summary).decode(), flush=True)
    return 0


if __name__ == "__main__":
    run_main(main)
