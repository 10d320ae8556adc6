"""Shared by the worker tests: a real Celery worker in its own process group, on this test's
queue and database, that a test can kill mid-task."""

import os
import signal
import subprocess
import sys
import time
import uuid
from urllib.parse import quote

from django.conf import settings
from django.db import connection


def database_url():
    """The test database as a DATABASE_URL, for a worker process."""
    s = connection.settings_dict
    auth = quote(s["USER"] or "postgres")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"])
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def start_worker(queue, tmp_path, *, name=None, env=None, options=()):
    """Start `celery worker` on `queue` against the test database; its log goes to tmp_path."""
    name = name or uuid.uuid4().hex[:4]
    environment = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "HUB_VAR_DIR": str(tmp_path),
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    cmd = [
        sys.executable, "-m", "celery", "-A", "integration_hub", "worker", "-Q", queue,
        "-n", f"{name}-{queue}@%h", "--loglevel=WARNING", "--without-gossip", "--without-mingle",
        "--without-heartbeat", *options,
    ]  # fmt: skip
    log = open(tmp_path / f"worker-{name}.log", "w")  # noqa: SIM115 (the worker writes to it)
    return subprocess.Popen(
        cmd,
        env=environment,
        cwd=settings.BASE_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_worker(proc, sig=signal.SIGTERM, timeout=20):
    """Signal the worker's process group (SIGKILL: a worker dying mid-task); wait for it."""
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def wait_for(check, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False
