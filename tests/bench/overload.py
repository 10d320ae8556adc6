"""Overload bench (issue 14): 8 senders of 1,000-event batches against gunicorn for 60 s, then
the same load for 60 s with the database stopped. Only 202, 429 and 503 may come back, never a
hang, and every event acknowledged with a 202 must be in the database afterwards.

    .venv/bin/python -m tests.bench.overload [--seconds 60] [--senders 8] [--limited 4]

The hub runs on a throwaway PostgreSQL server of its own (tests.bench.cluster: initdb in a
temporary folder, BENCH_PG_BIN, default /usr/lib/postgresql/15/bin) that the bench stops with
`pg_ctl stop -m immediate` while the senders keep going, starts again to count what was
stored, and removes at the end. Rate-limit buckets live in Redis (--redis-db, default 9, on
BENCH_REDIS_URL, default redis://127.0.0.1:6379). Prints a fixed-format report, then one line
of JSON; progress goes to stderr. Exit status 1 when a check misses.
"""

import argparse
import http.client
import math
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime

import orjson

from tests.bench.cluster import ThrowawayPostgres
from tests.bench.common import (
    EventStream,
    Gunicorn,
    fmt_int,
    log,
    psql,
    run_main,
    server_env,
)
from tests.bench.common import setup_django as common_setup_django

TEMPLATE_BATCHES = 40  # distinct batches generated once; rounds of them get fresh ids
MARK = "~R~"
ALLOWED = {202, 429, 503}


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m tests.bench.overload", description=__doc__)
    parser.add_argument("--seconds", type=float, default=60, help="length of each phase")
    parser.add_argument("--senders", type=int, default=8, help="concurrent senders")
    parser.add_argument(
        "--limited", type=int, default=4, help="senders using the rate-limited key (rest: none)"
    )
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=250, help="events/s of the limited key")
    parser.add_argument("--burst", type=int, default=1000, help="burst of the limited key")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--connect-timeout", type=int, default=2, help="DB_CONNECT_TIMEOUT")
    parser.add_argument("--client-timeout", type=float, default=30, help="a hang past this")
    parser.add_argument(
        "--max-wait", type=float, default=1.0, help="longest a sender honours Retry-After, s"
    )
    parser.add_argument("--redis-db", type=int, default=9, help="Redis db for rate buckets")
    args = parser.parse_args(argv)
    if not 0 <= args.limited <= args.senders:
        parser.error("--limited: between 0 and --senders")
    if args.batch_size > args.burst and args.limited:
        parser.error("--burst must hold one batch, or every limited batch is a 413")
    return args


# --- the load ------------------------------------------------------------------------------


class Batches:
    """Endless 1,000-event batches: a few distinct ones from EventStream, sent in rounds, each
    round with its own prefix on event and correlation ids, so every event is new and the
    senders spend no CPU generating them. Batch n is template n % T in round n // T."""

    def __init__(self, batch_size, count=TEMPLATE_BATCHES):
        stream = EventStream(batch_size * count)
        events = iter(stream)
        self.templates, self.ids = [], []
        for _ in range(count):
            batch = stream.take(events, batch_size)
            for event in batch:
                event["event_id"] = MARK + event["event_id"]
                event["correlation_id"] = MARK + event["correlation_id"]
            self.templates.append(orjson.dumps({"events": batch}))
            self.ids.append([e["event_id"] for e in batch])
        self.next_number, self.lock = 0, threading.Lock()

    def take(self):
        with self.lock:
            number, self.next_number = self.next_number, self.next_number + 1
        return number, self.body(number)

    def _split(self, number):
        template, round_ = number % len(self.templates), number // len(self.templates)
        return template, f"r{round_:05d}-".encode()

    def body(self, number):
        template, prefix = self._split(number)
        return self.templates[template].replace(MARK.encode(), prefix)

    def event_ids(self, number):
        template, prefix = self._split(number)
        return [i.replace(MARK, prefix.decode()) for i in self.ids[template]]


class Load:
    """Senders posting batches until `stop`; every answer is recorded with when its request
    went out and came back, to place it before, across or after the database's stop."""

    def __init__(self, *, base_url, keys, batches, args):
        self.host, self.port = base_url.removeprefix("http://").split(":")
        self.keys, self.batches, self.args = keys, batches, args
        self.stopping_at = self.down_at = math.inf  # pg_ctl stop called / returned
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answers = []  # (sent, answered, status, retry_after): monotonic times
        self.acknowledged = []  # batch numbers answered 202
        self.rejected_ids = set()  # ids of 202 batches the hub rejected (not acknowledged)
        self.samples = []  # the first few unexpected answers, for the report
        self.threads = [
            threading.Thread(target=self._send, args=(keys[i],), daemon=True)
            for i in range(args.senders)
        ]

    def start(self):
        for thread in self.threads:
            thread.start()

    def join(self):
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def _send(self, key):
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.args.client_timeout)
        pending = None
        while not self.stop.is_set():
            if pending is None:
                pending = self.batches.take()
            number, body = pending
            started = time.monotonic()
            retry_after, data = None, b""
            try:
                conn.request("POST", "/api/v1/events", body, headers)
                resp = conn.getresponse()
                data = resp.read()
                status, retry_after = resp.status, resp.getheader("Retry-After")
            except TimeoutError:
                status = "timeout"
            except (OSError, http.client.HTTPException) as exc:
                status, data = "error", repr(exc).encode()
            answered = time.monotonic()
            if not isinstance(status, int):
                conn.close()
            with self.lock:
                self.answers.append((started, answered, status, retry_after))
                if status not in ALLOWED and len(self.samples) < 5:
                    self.samples.append(f"{status} after {answered - started:.1f} s {data[:200]!r}")
            if status == 202:
                self._acknowledge(number, orjson.loads(data))
                pending = None
            elif status in (429, 503):  # the sender's duty: try the same batch again later
                self.stop.wait(min(float(retry_after or 1), self.args.max_wait))
            else:  # a wrong answer; counted, and the batch is given up
                pending = None
                self.stop.wait(0.2)
        conn.close()

    def _acknowledge(self, number, answer):
        rejected = {r.get("event_id") for r in answer.get("rejected") or ()}
        with self.lock:
            self.acknowledged.append(number)
            self.rejected_ids |= rejected


# --- figures -------------------------------------------------------------------------------


def percentile(values, share):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def split_phases(load):
    """Answers by phase: "up" (answered before the stop began), "stopping" (in flight while
    pg_ctl stopped the server), "down" (sent after pg_ctl reported it stopped)."""
    phases = {"up": [], "stopping": [], "down": []}
    for answer in load.answers:
        sent, answered = answer[0], answer[1]
        if answered < load.stopping_at:
            phases["up"].append(answer)
        elif sent >= load.down_at:
            phases["down"].append(answer)
        else:
            phases["stopping"].append(answer)
    return phases


def phase_figures(answers, seconds):
    latencies = [a[1] - a[0] for a in answers]
    statuses = Counter(str(a[2]) for a in answers)
    missing_retry_after = sum(1 for a in answers if a[2] in (429, 503) and not a[3])
    return {
        "requests": len(answers),
        "statuses": dict(sorted(statuses.items())),
        "p50_s": round(percentile(latencies, 0.50), 3),
        "p95_s": round(percentile(latencies, 0.95), 3),
        "max_s": round(max(latencies, default=float("nan")), 3),
        "seconds": round(seconds, 1),
        "missing_retry_after": missing_retry_after,
    }


def count_stored(url, ids):
    """How many of `ids` are in the event table: COPY them into a temp table and join."""
    with psql(url) as pg, pg.transaction():
        pg.execute("CREATE TEMP TABLE acked (event_id text PRIMARY KEY) ON COMMIT DROP")
        with pg.cursor() as cur, cur.copy("COPY acked (event_id) FROM STDIN") as copy:
            for event_id in ids:
                copy.write_row((event_id,))
        return pg.execute(
            "SELECT count(*) FROM acked JOIN tracing_traceevent e USING (event_id)"
        ).fetchone()[0]


def recovered(base_url, key, body, timeout=60):
    """Seconds until a batch is accepted again after the restart, or None."""
    host, port = base_url.removeprefix("http://").split(":")
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            conn.request("POST", "/api/v1/events", body, headers)
            if conn.getresponse().status == 202:
                return time.monotonic() - started
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()
        time.sleep(0.5)
    return None


def verdict(ok):
    return "OK" if ok else "MISS"


PHASE_NAMES = {"up": "database up", "stopping": "in flight at stop", "down": "database stopped"}
CHECKS = {
    "only_allowed": "only 202/429/503 answers",
    "no_2xx_down": "no 2xx while the database is stopped",
    "retry_after": "Retry-After on every 429/503",
    "no_hang": "no hang",
    "fast_503": "stopped database answered in time",
    "saw_429": "rate limit answered 429",
    "stored": "acknowledged events stored",
    "recovered": "accepting again after the restart",
}


def report(s, args):
    lines = [
        f"overload  {args.senders} senders of {fmt_int(args.batch_size)}-event batches "
        f"({args.limited} on a key limited to {fmt_int(args.rate)} events/s, burst "
        f"{fmt_int(args.burst)}; {args.senders - args.limited} unlimited), gunicorn "
        f"{args.workers} workers, DB_CONNECT_TIMEOUT {args.connect_timeout} s; a refused batch "
        f"is sent again after min(Retry-After, {args.max_wait:g} s)",
    ]
    for phase, name in PHASE_NAMES.items():
        p = s["phases"][phase]
        statuses = "  ".join(f"{code}: {fmt_int(n)}" for code, n in p["statuses"].items())
        lines.append(
            f"  {name:<17}: {p['seconds']:5.1f} s {fmt_int(p['requests']):>7} requests  "
            f"[{statuses or 'none'}]  latency p50 {p['p50_s']:.3f} s  p95 {p['p95_s']:.3f} s  "
            f"max {p['max_s']:.3f} s"
        )
    up_rate = s["acknowledged_up"] / max(s["phases"]["up"]["seconds"], 1e-9)
    lines.append(
        f"  acknowledged     : {fmt_int(s['acknowledged'])} events in "
        f"{fmt_int(s['acknowledged_batches'])} batches answered 202 "
        f"({fmt_int(round(up_rate))} events/s while up; incl. the batch after the restart)"
    )
    c, down = s["checks"], s["phases"]["down"]
    detail = {
        "no_hang": f"(none past the client timeout of {args.client_timeout:g} s)",
        "fast_503": f"(max {down['max_s']:.3f} s <= {args.connect_timeout} s + 1 s)",
        "saw_429": f"({fmt_int(s['answers_429'])} times)",
        "stored": f"{fmt_int(s['stored'])} of {fmt_int(s['acknowledged'])}",
        "recovered": "(after "
        + ("never" if s["recovery_s"] is None else f"{s['recovery_s']:.1f} s")
        + ")",
    }
    for check, label in CHECKS.items():
        text = " ".join(filter(None, (detail.get(check), verdict(c[check]))))
        lines.append(f"  {label:<36}: {text}")
    for sample in s["samples"]:
        lines.append(f"  unexpected: {sample}")
    return "\n".join(lines)


# --- the run -------------------------------------------------------------------------------


def prepare(pg, args, var):
    """Migrate the throwaway database, seed plants, issue an unlimited and a limited key."""
    base = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379").rstrip("/")
    env = server_env(pg.url) | {
        "DB_CONNECT_TIMEOUT": str(args.connect_timeout),
        "REDIS_URL": f"{base}/{args.redis_db}",
        "HUB_VAR_DIR": var,
    }
    unlimited = common_setup_django(env)
    from django.db import connections

    from integration_hub.models import ApiKey

    _, limited = ApiKey.issue("bench limited", events_per_second=args.rate, burst=args.burst)
    connections.close_all()
    keys = [limited] * args.limited + [unlimited] * (args.senders - args.limited)
    return env, keys, unlimited


def main(argv=None):
    args = parse_args(argv)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    pg, var = ThrowawayPostgres(), tempfile.mkdtemp(prefix="bench-overload-var-")
    server = None
    try:
        log(f"throwaway PostgreSQL in {pg.folder} on port {pg.port}")
        pg.create()
        env, keys, unlimited = prepare(pg, args, var)
        log(f"generating {TEMPLATE_BATCHES} template batches")
        batches = Batches(args.batch_size)
        server = Gunicorn(env, workers=args.workers).start()
        load = Load(base_url=server.url, keys=keys, batches=batches, args=args)
        log(f"phase 1: {args.senders} senders, database up, {args.seconds:g} s")
        began = time.monotonic()
        load.start()
        time.sleep(args.seconds)
        log("stopping the database (immediate)")
        load.stopping_at = time.monotonic()
        pg.stop()
        load.down_at = time.monotonic()
        log(f"phase 2: database stopped, {args.seconds:g} s")
        time.sleep(args.seconds)
        load.join()
        ended = time.monotonic()
        log("starting the database again")
        pg.start()
        number, body = batches.take()
        recovery_s = recovered(server.url, unlimited, body)
        ids = [i for n in load.acknowledged for i in batches.event_ids(n)]
        ids = [i for i in ids if i not in load.rejected_ids]
        if recovery_s is not None:
            ids += batches.event_ids(number)
        log(f"counting {len(ids):,} acknowledged events in the database")
        stored = count_stored(pg.url, ids)
    finally:
        if server:
            server.stop()
        pg.remove()
        shutil.rmtree(var, ignore_errors=True)
    grouped = split_phases(load)
    phases = {
        "up": phase_figures(grouped["up"], load.stopping_at - began),
        "stopping": phase_figures(grouped["stopping"], load.down_at - load.stopping_at),
        "down": phase_figures(grouped["down"], ended - load.down_at),
    }
    answers, down = load.answers, phases["down"]
    statuses = {a[2] for a in answers}
    summary = {
        "bench": "overload",
        "at": started_at,
        "args": vars(args),
        "cpus": os.cpu_count(),
        "phases": phases,
        "acknowledged": len(ids),
        "acknowledged_batches": len(load.acknowledged),
        "acknowledged_up": sum(1 for a in grouped["up"] if a[2] == 202) * args.batch_size,
        "answers_429": sum(1 for a in answers if a[2] == 429),
        "stored": stored,
        "recovery_s": None if recovery_s is None else round(recovery_s, 1),
        "samples": load.samples,
    }
    summary["checks"] = {
        "only_allowed": statuses <= ALLOWED,
        "no_2xx_down": not any(str(a[2]).startswith("2") for a in grouped["down"]),
        "retry_after": sum(p["missing_retry_after"] for p in phases.values()) == 0,
        "no_hang": "timeout" not in statuses,
        "fast_503": down["requests"] > 0 and down["max_s"] <= args.connect_timeout + 1,
        "saw_429": args.limited == 0 or summary["answers_429"] > 0,
        "stored": stored == len(ids) and len(ids) > 0,
        "recovered": recovery_s is not None,
    }
    print(report(summary, args), flush=True)
    print(orjson.dumps(summary).decode(), flush=True)
    return 0 if all(summary["checks"].values()) else 1


if __name__ == "__main__":
    run_main(main)
