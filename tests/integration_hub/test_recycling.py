"""Long-lived processes are replaced now and then (README, "Running in production"): a gunicorn
worker after GUNICORN_MAX_REQUESTS requests, a Celery pool child after
CELERY_MAX_TASKS_PER_CHILD tasks or CELERY_MAX_MEMORY_PER_CHILD_MB of peak RSS."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

from tests.integration_hub.conftest import ROOT, run_django

CELERY_LIMITS = (
    "import django; django.setup(); from integration_hub.celery import app; "
    "print(app.conf.worker_max_tasks_per_child, app.conf.worker_max_memory_per_child)"
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url):
    with urllib.request.urlopen(url, timeout=20) as response:
        return response.status


def test_a_web_worker_is_replaced_after_its_requests(tmp_path):
    """One worker, GUNICORN_MAX_REQUESTS=3 and no jitter: nine requests, three workers."""
    env = {**os.environ, "DEBUG": "1", "DATABASE_URL": f"sqlite:///{tmp_path}/hub.sqlite3",
           "HUB_VAR_DIR": str(tmp_path / "var"), "CELERY_BROKER_URL": "memory://",
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
           "GUNICORN_MAX_REQUESTS": "3", "GUNICORN_MAX_REQUESTS_JITTER": "0"}  # fmt: skip
    access = tmp_path / "access.log"
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:integration_hub.gunicorn_conf",
         "-w", "1", "-b", f"127.0.0.1:{port}", "--access-logfile", str(access),
         "--access-logformat", "%(p)s %(s)s", "integration_hub.wsgi"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    statuses = []
    try:
        for _ in range(9):
            for _ in range(300):  # a replacement worker takes a moment to start
                try:
                    statuses.append(get(f"http://127.0.0.1:{port}/healthz"))
                    break
                except OSError:
                    time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert statuses == [200] * 9
    answered = Counter(line.split()[0] for line in Path(access).read_text().splitlines())
    assert sorted(answered.values()) == [3, 3, 3], answered


def test_celery_pool_children_are_recycled_by_default():
    result = run_django({}, CELERY_LIMITS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["40", str(512 * 1024)]


def test_celery_recycling_follows_the_environment_and_zero_turns_it_off():
    result = run_django(
        {"CELERY_MAX_TASKS_PER_CHILD": "0", "CELERY_MAX_MEMORY_PER_CHILD_MB": "300"}, CELERY_LIMITS
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["None", str(300 * 1024)]


def test_a_typo_in_a_recycling_limit_is_refused_naming_it():
    result = run_django({"CELERY_MAX_TASKS_PER_CHILD": "2OO"})
    assert result.returncode != 0
    assert "CELERY_MAX_TASKS_PER_CHILD must be a whole number" in result.stderr
    gunicorn = subprocess.run(
        [sys.executable, "-c", "import integration_hub.gunicorn_conf"],
        cwd=ROOT, env={**os.environ, "GUNICORN_MAX_REQUESTS": "-1"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert gunicorn.returncode != 0
    assert "GUNICORN_MAX_REQUESTS must be at least 0" in gunicorn.stderr


def test_the_wsgi_application_freezes_what_it_loaded(tmp_path):
    """Django, the apps and their URLs are left out of the garbage collector's full walks."""
    code = "import gc, integration_hub.wsgi; print(gc.get_freeze_count())"
    done = run_django({"DATABASE_URL": f"sqlite:///{tmp_path}/hub.sqlite3"}, code)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) > 50_000  # 0 without the freeze
