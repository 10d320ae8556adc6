"""gunicorn settings: `gunicorn -c python:integration_hub.gunicorn_conf integration_hub.wsgi`.

Prometheus counters live in each worker process. With several workers each one writes its
values to files in PROMETHEUS_MULTIPROC_DIR (default var/metrics) and /metrics sums them, so
a scrape shows the same totals whichever worker answers. The folder is emptied when gunicorn
starts (counters restart at zero, as Prometheus expects of a restarted process).

Each worker is replaced after GUNICORN_MAX_REQUESTS requests, plus up to
GUNICORN_MAX_REQUESTS_JITTER more so that workers do not all restart at once: a bound on slow
memory growth (tests/bench/soak.py measures it). 0 turns it off.
"""

import os
from pathlib import Path

from integration_hub.env import env_int

_var = Path(os.environ.get("HUB_VAR_DIR") or Path(__file__).resolve().parent.parent / "var")
# Set before any worker imports prometheus_client, which reads it at import.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(_var / "metrics"))

max_requests = env_int("GUNICORN_MAX_REQUESTS", 1000, minimum=0)
max_requests_jitter = env_int("GUNICORN_MAX_REQUESTS_JITTER", 200, minimum=0)


def on_starting(server):
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
