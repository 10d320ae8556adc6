"""Soak bench (issue 14): the simulator at a sustained rate for 30 minutes while dashboards
poll and bulk replays run; web and worker RSS must grow less than 10 % and nothing may 5xx.

    .venv/bin/python -m tests.bench.soak [--minutes 30] [--rate 120] [--redis-db 9]

Drops and recreates BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/
hub_bench_soak) and empties Redis database --redis-db (default 9) on BENCH_REDIS_URL (default
redis://127.0.0.1:6379), which is the Celery broker and holds the rate buckets: give it a
database nobody else uses. Runs collectstatic (production mode serves the manifest), gunicorn
(2 workers, access log), a Celery worker (-c 2) and beat, a local replay receiver that every
system's replay_url points at, and `manage.py simulate` for the duration; a poller fetches the
dashboards and their HTMX partials as a supervisor every --poll-seconds, and an analyst starts
a bulk replay of the open dead letters through the API every --replay-minutes. gunicorn runs
with the production settings file and Celery with the production settings, so workers and
pool children are recycled as in production (GUNICORN_MAX_REQUESTS,
CELERY_MAX_TASKS_PER_CHILD, ...). Every --sample-seconds the live processes of each role (web:
the gunicorn workers, worker main, worker pool: its children) are found again and their VmRSS
read, so a replaced process is followed by its successor.

RSS growth per role = mean, over the samples in the last 5 minutes, of the role's mean VmRSS
across its live processes / the same in minutes 2-5 (after warm-up) - 1. Runs shorter than 15
minutes scale the windows down: the warm-up is min(2 min, a third of the run), the baseline
runs to min(5 min, half-way through what is left) and the final window is the last 5 minutes,
starting no earlier than the baseline's end. Processes replaced per role are counted from the
pids the samples saw (one that lived less than a sample interval is missed); the access log
also names every web worker that answered. Prints a fixed-format report, then one line of
JSON; exit status 1 on a miss.
"""

import argparse
import http.client
import os
import re
import shutil
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import orjson

from tests.bench.common import (
    Gunicorn,
    children,
    fmt_int,
    log,
    psql,
    recreate_database,
    run_main,
    server_env,
)
from tests.bench.common import setup_django as common_setup_django
from tests.bench.processes import Background, celery, manage, rss_mb

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/hub_bench_soak"
PLANTS = ("P100", "P101")
TARGET_GROWTH = 0.10
ACCESS_FORMAT = "%(p)s %(s)s %(m)s %(U)s"
GUNICORN_CONFIG = "python:integration_hub.gunicorn_conf"  # as in README "Running in production"
ROLES = ("web", "worker main", "worker pool")
HTMX = {"HX-Request": "true"}
PAGES = (  # what a supervisor keeps open, and the partials those pages refresh
    ("/", {}),
    ("/plants/P100/", {}),
    ("/plants/P100/", HTMX),
    ("/plants/P100/slos/order-release-latency/", {}),
    ("/dead-letters/", {}),
    ("/dead-letters/counts", HTMX),
    ("/transactions/?q={query}", {}),
)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m tests.bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=120, help="simulator: orders a minute")
    parser.add_argument("--poll-seconds", type=float, default=5, help="dashboard poll cycle")
    parser.add_argument("--replay-minutes", type=float, default=3, help="bulk replay every")
    parser.add_argument("--sample-seconds", type=float, default=30, help="RSS sample every")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--redis-db", type=int, default=9, help="Redis database (emptied)")
    return parser.parse_args(argv)


# --- setup ---------------------------------------------------------------------------------


def prepare(url, args):
    """Fresh database and broker, Django here, static files, the people; return env and ids."""
    import redis

    base = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379").rstrip("/")
    redis_url = f"{base}/{args.redis_db}"
    log(f"recreating {url}; emptying {redis_url}")
    recreate_database(url)
    redis.Redis.from_url(redis_url).flushdb()
    var = tempfile.mkdtemp(prefix="bench-soak-var-")
    env = server_env(url) | {
        "REDIS_URL": redis_url,
        "HUB_VAR_DIR": var,
        "PROMETHEUS_MULTIPROC_DIR": var,
        "PYTHONUNBUFFERED": "1",
    }
    key = common_setup_django(env)
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.test import Client
    from rest_framework.authtoken.models import Token

    from integration_hub.models import Plant, PlantMembership

    log("collectstatic")
    call_command("collectstatic", interactive=False, verbosity=0)
    people = {}
    for role in ("supervisor", "analyst"):
        user = User.objects.create_user(f"soak-{role}")
        user.groups.add(Group.objects.get(name=role))
        for plant in Plant.objects.filter(code__in=PLANTS):
            PlantMembership.objects.create(user=user, plant=plant)
        people[role] = user
    browser = Client()
    browser.force_login(people["supervisor"])
    session = browser.cookies[settings.SESSION_COOKIE_NAME].value
    token = Token.objects.create(user=people["analyst"]).key
    return env, {
        "key": key,
        "cookie": f"{settings.SESSION_COOKIE_NAME}={session}",
        "token": token,
    }


# --- traffic -------------------------------------------------------------------------------


class Http:
    """GET/POST to gunicorn from one thread, counting answers by status ("error" for none)."""

    def __init__(self, base_url, headers):
        self.host, self.port = base_url.removeprefix("http://").split(":")
        self.headers = headers
        self.statuses, self.latencies, self.problems = Counter(), [], []

    def call(self, method, path, body=None, **headers):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        started = time.monotonic()
        try:
            conn.request(method, path, body, self.headers | headers)
            resp = conn.getresponse()
            data, status = resp.read(), resp.status
        except (OSError, http.client.HTTPException) as exc:
            data, status = repr(exc).encode(), "error"
        finally:
            conn.close()
        self.latencies.append(time.monotonic() - started)
        self.statuses[status] += 1
        if (status == "error" or status >= 400) and len(self.problems) < 5:
            self.problems.append(f"{method} {path}: {status} {data[:200]!r}")
        return status, data


def poll(http_, stop, every):
    """The dashboards a supervisor keeps open: pages and the partials they refresh by HTMX."""
    from tracing.models import Transaction

    while not stop.is_set():
        started = time.monotonic()
        latest = Transaction.objects.order_by("-last_seen").values_list("correlation_id")[:1]
        query = quote(latest[0][0] if latest else "PO-1")
        for path, headers in PAGES:
            http_.call("GET", path.format(query=query), Accept="text/html", **headers)
        stop.wait(max(0.0, every - (time.monotonic() - started)))


def replay_open_letters(http_, stop, every, receiver_url, outcomes):
    """Every `every` s, point new systems at the receiver and bulk-replay the open letters."""
    from integration_hub.models import System

    wait = min(60.0, every)  # the first one after a minute, so short runs see one
    while not stop.wait(wait):
        wait = every
        System.objects.filter(replay_url="").update(replay_url=receiver_url)
        body = orjson.dumps({"action": "replay", "filter": {"state": "open"}})
        status, data = http_.call(
            "POST", "/api/v1/dead-letters/bulk", body, **{"Content-Type": "application/json"}
        )
        answer = orjson.loads(data) if status == 202 else {}
        outcome = {
            "status": status,
            "touched": answer.get("touched"),
            "skipped": answer.get("skipped"),
        }
        outcomes.append(outcome)
        log(f"bulk replay: {outcome}")


# --- measuring -----------------------------------------------------------------------------


def sample(samples, elapsed, processes):
    """One reading per role: {pid: VmRSS MB} of its processes alive now."""
    readings = {}
    for role, pid in processes:
        mb = rss_mb(pid)
        if mb is not None:
            readings.setdefault(role, {})[pid] = mb
    for role, by_pid in readings.items():
        samples.setdefault(role, []).append((elapsed, by_pid))


def windows(seconds):
    """(baseline start, baseline end, final start) in seconds since the start."""
    warmup = min(120.0, seconds / 3)
    base_end = min(300.0, warmup + (seconds - warmup) / 2)
    return warmup, base_end, max(seconds - 300.0, base_end)


def mean(values):
    return sum(values) / len(values)


def growth(readings, seconds, started):
    """A role's RSS over the run from its readings [(t, {pid: MB})]; `started` processes."""
    points = [(t, mean(list(by_pid.values()))) for t, by_pid in readings]
    start, base_end, final_start = windows(seconds)
    base = [mb for t, mb in points if start <= t <= base_end]
    final = [mb for t, mb in points if t >= final_start]
    pids = {pid for _, by_pid in readings for pid in by_pid}
    figures = {
        "start_mb": round(points[0][1], 1),
        "end_mb": round(points[-1][1], 1),
        "peak_mb": round(max(mb for _, by_pid in readings for mb in by_pid.values()), 1),
        "processes": len(pids),
        "replaced": len(pids) - started,
        "samples": len(points),
        "lifetimes": {  # pid: [first seen s, last seen s, first MB, last MB]
            str(pid): [
                round(seen[0][0]),
                round(seen[-1][0]),
                round(seen[0][1], 1),
                round(seen[-1][1], 1),
            ]
            for pid in sorted(pids)
            if (seen := [(t, by_pid[pid]) for t, by_pid in readings if pid in by_pid])
        },
    }
    if not base or not final:
        return figures | {"growth": None}
    return figures | {
        "baseline_mb": round(mean(base), 1),
        "final_mb": round(mean(final), 1),
        "growth": round(mean(final) / mean(base) - 1, 4),
    }


def access_statuses(text):
    """(statuses of POST /api/v1/events, every 5xx line, pids of the workers that answered)
    from the gunicorn access log."""
    events, errors, pids = Counter(), [], set()
    for line in text.splitlines():
        match = re.fullmatch(r"<(\d+)> (\d{3}) (\w+) (\S+)", line.strip())
        if not match:
            continue
        pid, status, method, path = match.groups()
        pids.add(int(pid))
        if method == "POST" and path == "/api/v1/events":
            events[status] += 1
        if status.startswith("5"):
            errors.append(line.strip())
    return events, errors, pids


def simulator_line(text):
    done = [line for line in text.splitlines() if line.startswith("done: ")]
    return done[-1].removeprefix("done: ") if done else "(no summary line)"


def verdict(ok):
    return "OK" if ok else "MISS"


def statuses_text(counter):
    return "  ".join(f"{k}: {fmt_int(v)}" for k, v in sorted(counter.items(), key=str)) or "none"


def report(s, args):
    warmup, base_end, final_start = s["windows"]
    lines = [
        f"soak  {s['minutes']:g} min: simulator at {args.rate:g} orders/min on "
        f"{', '.join(PLANTS)}, dashboards polled every {args.poll_seconds:g} s as a supervisor "
        f"({s['poll_cycles']} cycles), bulk replay of the open dead letters every "
        f"{args.replay_minutes:g} min as an analyst; gunicorn {args.workers} workers, Celery "
        f"worker -c {args.concurrency} and beat",
        f"  recycling        : {recycling_text(s['recycling'])}",
        f"  simulator        : {s['simulator']}",
        f"  events stored    : {fmt_int(s['events'])} "
        f"({s['events'] / max(s['seconds'], 1):.1f}/s), {fmt_int(s['dead_letters'])} dead letters",
        f"  simulator answers: {statuses_text(s['simulator_statuses'])}  (gunicorn access log)",
        f"  poller answers   : {statuses_text(s['poller_statuses'])}  "
        f"(p95 {s['poller_p95_s']:.2f} s, max {s['poller_max_s']:.2f} s)",
        f"  bulk replays     : {len(s['replays'])} started "
        f"({', '.join(str(r['touched']) for r in s['replays']) or '-'} letters queued; "
        "superseded, closed or already queued ones are skipped), "
        f"answers {statuses_text(s['replay_statuses'])}",
        f"  replays delivered: {fmt_int(s['delivered'])} received by the target "
        f"({fmt_int(s['replayed'])} dead letters replayed, {fmt_int(s['replays_pending'])} "
        "replays still queued or sending at the end)",
        f"  5xx answers      : {s['server_errors']} (whole access log)  "
        f"{verdict(s['checks']['no_5xx'])}",
        f"  worker log errors: {s['worker_errors']} lines with ERROR or Traceback",
        f"  RSS (VmRSS of every live process every {args.sample_seconds:g} s, by role; a "
        "replaced process is followed by its successor):",
        "    a role's MB = the mean over its live processes; growth = its mean over t >= "
        f"{final_start / 60:.1f} min / over {warmup / 60:.1f}-{base_end / 60:.1f} min - 1; "
        "peak = the largest single process",
        f"    {'role':<12} {'processes':>9} {'replaced':>8} {'start MB':>9} {'end MB':>8} "
        f"{'peak MB':>8} {'base MB':>8} {'final MB':>9} {'growth':>8}",
    ]
    for role in ROLES:
        g = s["rss"].get(role)
        if g is None or g["growth"] is None:
            lines.append(f"    {role:<12} (too few samples)")
            continue
        lines.append(
            f"    {role:<12} {g['processes']:>9} {g['replaced']:>8} {g['start_mb']:>9.1f} "
            f"{g['end_mb']:>8.1f} {g['peak_mb']:>8.1f} {g['baseline_mb']:>8.1f} "
            f"{g['final_mb']:>9.1f} {g['growth']:>+8.1%}  {verdict(g['growth'] < TARGET_GROWTH)}"
        )
    lines += [
        f"  web workers that answered: {s['web_workers_answered']} (access log; "
        f"{args.workers} at a time)",
        f"  RSS growth < {TARGET_GROWTH:.0%} for every role: {verdict(s['checks']['rss'])}",
    ]
    for problem in s["problems"]:
        lines.append(f"  problem: {problem}")
    return "\n".join(lines)


# --- the run -------------------------------------------------------------------------------


def recycling_text(r):
    web = (
        f"a web worker after {r['max_requests']} requests + up to {r['max_requests_jitter']}"
        if r["max_requests"]
        else "web workers never"
    )
    tasks = f"{r['max_tasks_per_child']} tasks" if r["max_tasks_per_child"] else "no task limit"
    memory = (
        f"{r['max_memory_per_child_mb']} MB peak RSS"
        if r["max_memory_per_child_mb"]
        else ("no memory limit")
    )
    return f"{web}; a pool child after {tasks} or {memory} (production settings)"


def recycling():
    """The recycling limits gunicorn and Celery run with here (the production settings)."""
    from django.conf import settings

    from integration_hub import gunicorn_conf

    memory = settings.CELERY_WORKER_MAX_MEMORY_PER_CHILD
    return {
        "max_requests": gunicorn_conf.max_requests,
        "max_requests_jitter": gunicorn_conf.max_requests_jitter,
        "max_tasks_per_child": settings.CELERY_WORKER_MAX_TASKS_PER_CHILD,
        "max_memory_per_child_mb": memory // 1024 if memory else None,
    }


def processes(server, worker):
    """(role, pid) of every gunicorn worker and Celery worker process alive now."""
    web = [("web", pid) for pid in sorted(server.worker_pids())]
    pool = [("worker pool", pid) for pid in sorted(children(worker.proc.pid))]
    return web + [("worker main", worker.proc.pid)] + pool


def run(args, env, people, receiver):
    """Start everything, let it run for --minutes while sampling RSS; return raw figures."""
    fd, access_path = tempfile.mkstemp(prefix="bench-soak-access-", suffix=".log")
    os.close(fd)
    access = ["-c", GUNICORN_CONFIG, "--access-logfile", access_path]
    access += ["--access-logformat", ACCESS_FORMAT]
    seconds, stop, samples, replays, problems = args.minutes * 60, threading.Event(), {}, [], []
    server, background, threads = None, [], []
    try:
        server = Gunicorn(env, workers=args.workers, extra_args=access).start()
        worker = Background(
            "worker",
            celery("worker", "-c", str(args.concurrency), "-n", "soak@%h", "--loglevel=WARNING"),
            env,
        )
        beat_schedule = Path(env["HUB_VAR_DIR"]) / "celerybeat-schedule"
        beat = Background("beat", celery("beat", "--loglevel=WARNING", "-s", beat_schedule), env)
        simulator = Background(
            "simulator",
            manage(
                "simulate",
                "--url",
                server.url,
                "--key",
                people["key"],
                "--plants",
                ",".join(PLANTS),
                "--rate",
                str(args.rate),
                "--duration",
                str(seconds),
                "--seed",
                "4711",
            ),  # fmt: skip
            env,
        )
        background = [simulator, beat, worker]
        poller = Http(server.url, {"Cookie": people["cookie"]})
        analyst = Http(server.url, {"Authorization": f"Token {people['token']}"})
        threads = [
            threading.Thread(target=poll, args=(poller, stop, args.poll_seconds), daemon=True),
            threading.Thread(
                target=replay_open_letters,
                args=(analyst, stop, args.replay_minutes * 60, receiver.url, replays),
                daemon=True,
            ),
        ]
        for thread in threads:
            thread.start()
        began = time.monotonic()
        log(f"running for {args.minutes:g} min")
        while (elapsed := time.monotonic() - began) < seconds:
            sample(samples, elapsed, processes(server, worker))
            dead = [p.name for p in (beat, worker) if p.proc.poll() is not None]
            if server.proc.poll() is not None or dead:
                problems.append(f"exited early: {dead or ['gunicorn']}")
                break
            if int(elapsed) % 300 < args.sample_seconds:
                log(f"{elapsed / 60:.1f} min: poller {dict(poller.statuses)}")
            stop.wait(min(args.sample_seconds, seconds - elapsed))
        sample(samples, time.monotonic() - began, processes(server, worker))
        elapsed = time.monotonic() - began
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
        simulator.proc.wait(timeout=120)
    finally:
        stop.set()
        for proc in background:
            proc.stop()
        if server:
            server.stop()
    texts = {p.name: p.text() for p in background}
    for p in background:
        p.log_path.unlink(missing_ok=True)
    access_text = Path(access_path).read_text(errors="replace")
    Path(access_path).unlink(missing_ok=True)
    return {
        "seconds": elapsed,
        "samples": samples,
        "replays": replays,
        "poller": poller,
        "analyst": analyst,
        "texts": texts,
        "access": access_text,
        "problems": problems,
    }


def main(argv=None):
    args = parse_args(argv)
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    env, people = prepare(url, args)
    from django.db.models import Q

    from monitoring.models import Replay
    from tests.receivers.replay import Receiver
    from tracing.models import DeadLetter

    try:
        with Receiver() as receiver:
            raw = run(args, env, people, receiver)
            delivered = len(receiver.requests)
    finally:
        shutil.rmtree(env["HUB_VAR_DIR"], ignore_errors=True)
    with psql(url) as pg:
        events = pg.execute("SELECT count(*) FROM tracing_traceevent").fetchone()[0]
    sim_statuses, server_errors, web_pids = access_statuses(raw["access"])
    if not web_pids:
        raw["problems"].append("no line of the access log in the expected format")
    poller, analyst = raw["poller"], raw["analyst"]
    latencies = sorted(poller.latencies) or [float("nan")]
    logs = raw["texts"]["worker"] + raw["texts"]["beat"]
    started = {"web": args.workers, "worker main": 1, "worker pool": args.concurrency}
    rss = {
        role: growth(readings, raw["seconds"], started[role])
        for role, readings in raw["samples"].items()
    }
    summary = {
        "bench": "soak",
        "at": started_at,
        "args": vars(args),
        "cpus": os.cpu_count(),
        "minutes": round(raw["seconds"] / 60, 1),
        "seconds": round(raw["seconds"], 1),
        "windows": windows(raw["seconds"]),
        "simulator": simulator_line(raw["texts"]["simulator"]),
        "events": events,
        "dead_letters": DeadLetter.objects.count(),
        "simulator_statuses": dict(sim_statuses),
        "poller_statuses": {str(k): v for k, v in poller.statuses.items()},
        "poll_cycles": poller.statuses.total() // len(PAGES),
        "poller_p95_s": latencies[int(0.95 * (len(latencies) - 1))],
        "poller_max_s": latencies[-1],
        "replays": raw["replays"],
        "replay_statuses": {str(k): v for k, v in analyst.statuses.items()},
        "delivered": delivered,
        "replayed": DeadLetter.objects.filter(state="replayed").count(),
        "replays_pending": Replay.objects.filter(
            Q(state="queued") | Q(state="sending") | Q(state="held")
        ).count(),
        "server_errors": len(server_errors),
        "worker_errors": len(re.findall(r"ERROR|Traceback", logs)),
        "recycling": recycling(),
        "rss": rss,
        "web_workers_answered": len(web_pids),
        "problems": raw["problems"] + server_errors[:5] + poller.problems + analyst.problems,
    }
    answered = "error" not in poller.statuses and "error" not in analyst.statuses
    summary["checks"] = {
        "no_5xx": summary["server_errors"] == 0 and answered and bool(web_pids),
        "rss": set(rss) == set(ROLES)
        and all(g["growth"] is not None and g["growth"] < TARGET_GROWTH for g in rss.values()),
    }
    print(report(summary, args), flush=True)
    print(orjson.dumps(summary).decode(), flush=True)
    return 0 if all(summary["checks"].values()) else 1


if __name__ == "__main__":
    run_main(main)
