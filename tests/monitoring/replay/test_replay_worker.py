"""Real Celery workers on Redis: a worker killed with SIGKILL mid-bulk loses no replay, and the
target applies each idempotency key exactly once."""

import os
import signal
import subprocess
import sys
import time
import uuid
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from integration_hub.models import System
from monitoring.models import Replay
from monitoring.replay import requests, sweep
from tests.events import failed
from tests.receivers.replay import Receiver
from tracing.ingest.pipeline import ingest_events
from tracing.models import DeadLetter

LEASE = 3


def database_url():
    s = connection.settings_dict
    auth = quote(s["USER"] or "postgres")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"])
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def start_worker(name, queue, tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "REPLAY_QUEUE": queue,
        "REPLAY_LEASE_SECONDS": str(LEASE),
        "REPLAY_BATCH_SIZE": "10",
        "HUB_VAR_DIR": str(tmp_path),
        "LOG_LEVEL": "WARNING",
    }
    cmd = [
        sys.executable, "-m", "celery", "-A", "integration_hub", "worker", "-Q", queue,
        "-c", "1", "-n", f"{name}-{queue}@%h", "--loglevel=WARNING", "--without-gossip",
        "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    return subprocess.Popen(
        cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def stop(proc, sig=signal.SIGTERM):
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def make_dead_letters(n):
    events = [
        failed(
            "received",
            correlation_id=f"PO-K{i}",
            business_keys={"order": f"K{i}"},
            error_class="transient",
            code="HTTP_503",
            status="failed",
            payload={"order": f"K{i}"},
            event_id=f"kill-{i}",
        )  # fmt: skip
        for i in range(n)
    ]
    assert ingest_events(events).accepted == n


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_worker_killed_mid_bulk_loses_no_replay_and_duplicates_none(
    p100, alice, settings, tmp_path
):
    n = 300
    queue = f"replay-{uuid.uuid4().hex[:8]}"
    settings.REPLAY_QUEUE = queue
    settings.REPLAY_LEASE_SECONDS = LEASE
    settings.REPLAY_BATCH_SIZE = 10
    make_dead_letters(n)
    workers = {}
    with Receiver(delay=0.01) as target:
        System.objects.filter(code="MES").update(replay_url=target.url)
        try:
            workers = {w: start_worker(w, queue, tmp_path) for w in ("a", "b")}
            bulk = requests.replay_selection(
                dead_letters=DeadLetter.objects.all(), requested_by=alice, selection={}
            )
            assert bulk.touched == n
            deadline = time.monotonic() + 30
            while len(target.requests) < n // 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(target.requests) >= n // 3, "workers did not start delivering"
            stop(workers["a"], signal.SIGKILL)
            killed_at = len(target.requests)
            workers["a"] = start_worker("a2", queue, tmp_path)
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                if not Replay.objects.filter(state__in=("queued", "sending", "held")).exists():
                    break
                sweep.sweep()
                time.sleep(1)
        finally:
            for proc in workers.values():
                stop(proc)
    assert killed_at < n, "the kill came after everything was sent; it proves nothing"
    keys = {d.id: f"hub-dl-{d.id}-v1" for d in DeadLetter.objects.all()}
    assert DeadLetter.objects.filter(state="replayed").count() == n
    assert Replay.objects.filter(state="succeeded").count() == n
    assert all(target.applied[key] == 1 for key in keys.values())  # none lost, none twice
    assert set(target.applied) == set(keys.values())
