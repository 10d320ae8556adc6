"""Real Celery workers on Redis: a worker killed with SIGKILL mid-bulk loses no replay, and the
target applies each idempotency key exactly once."""

import signal
import time
import uuid

import pytest

from integration_hub.models import System
from monitoring.models import Replay
from monitoring.replay import requests, sweep
from tests.events import failed
from tests.monitoring.conftest import start_worker, stop_worker
from tests.receivers.replay import Receiver
from tracing.ingest.pipeline import ingest_events
from tracing.models import DeadLetter

LEASE = 3


def replay_worker(name, queue, tmp_path):
    env = {"REPLAY_QUEUE": queue, "REPLAY_LEASE_SECONDS": str(LEASE), "REPLAY_BATCH_SIZE": "10"}
    return start_worker(queue, tmp_path, name=name, env=env, options=["-c", "1"])


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
            workers = {w: replay_worker(w, queue, tmp_path) for w in ("a", "b")}
            bulk = requests.replay_selection(
                dead_letters=DeadLetter.objects.all(), requested_by=alice, selection={}
            )
            assert bulk.touched == n
            deadline = time.monotonic() + 30
            while len(target.requests) < n // 3 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(target.requests) >= n // 3, "workers did not start delivering"
            stop_worker(workers["a"], signal.SIGKILL)
            killed_at = len(target.requests)
            workers["a"] = replay_worker("a2", queue, tmp_path)
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline:
                if not Replay.objects.filter(state__in=("queued", "sending", "held")).exists():
                    break
                sweep.sweep()
                time.sleep(1)
        finally:
            for proc in workers.values():
                stop_worker(proc, timeout=15)
    assert killed_at < n, "the kill came after everything was sent; it proves nothing"
    keys = {d.id: f"hub-dl-{d.id}-v1" for d in DeadLetter.objects.all()}
    assert DeadLetter.objects.filter(state="replayed").count() == n
    assert Replay.objects.filter(state="succeeded").count() == n
    assert all(target.applied[key] == 1 for key in keys.values())  # none lost, none twice
    assert set(target.applied) == set(keys.values())
