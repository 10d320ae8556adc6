"""What each beat task costs in memory: run it in a fresh forked process, report its peak RSS.

    .venv/bin/python -m tests.bench.task_memory --url URL [--runs 3] [task ...]

A Celery pool child's RSS is the high-water mark of the largest task it ran (the allocators
keep what they took), so a task whose peak grows with the data makes the soak's worker pool
grow however often children are recycled. Point --url at a database with data (the soak
bench's `hub_bench_soak` after a run, or a dashboard bench's): each task named (default: every
task of CELERY_BEAT_SCHEDULE) runs --runs times in a process forked from one that has set up
Django and imported the tasks, and the child prints its RSS before, after, and its peak (from
getrusage), and the seconds a run took. The tasks write to that database as beat would.
"""

import argparse
import gc
import os
import resource
import time

from tests.bench.common import BenchError, run_main


def rss_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0


def measure(app, name, runs):
    """In a forked child: run the task `runs` times; print one line; exit."""
    before = rss_mb()
    started = time.perf_counter()
    for _ in range(runs):
        app.tasks[name].apply(throw=True)
    seconds = (time.perf_counter() - started) / runs
    gc.collect()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"  {name:38s} before {before:6.1f}  after {rss_mb():6.1f}  peak {peak:6.1f} MB"
        f"  ({seconds:.2f} s a run)",
        flush=True,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.bench.task_memory", description=__doc__)
    parser.add_argument("--url", required=True, help="postgres:// URL of a database with data")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("tasks", nargs="*", help="task names (default: every beat task)")
    args = parser.parse_args(argv)
    os.environ.update(DATABASE_URL=args.url, DJANGO_SETTINGS_MODULE="integration_hub.settings")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connections

    from integration_hub.celery import app

    app.loader.import_default_modules()
    names = args.tasks or sorted({e["task"] for e in settings.CELERY_BEAT_SCHEDULE.values()})
    unknown = [n for n in names if n not in app.tasks]
    if unknown:
        raise BenchError(f"unknown task(s): {', '.join(unknown)}")
    connections.close_all()  # each child opens its own
    print(f"task memory on {args.url}, {args.runs} runs each, a fresh process per task:")
    for name in names:
        pid = os.fork()
        if pid == 0:
            try:
                measure(app, name, args.runs)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
    return 0


if __name__ == "__main__":
    run_main(main)
