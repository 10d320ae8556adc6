"""Bulk replay benchmark: 10,000 dead letters through two Celery worker processes to a local
HTTP receiver. Prints messages/s and how many were lost and duplicated (both must be 0).

Run: .venv/bin/python -m tests.bench.replay  (PostgreSQL and Redis; BENCH_REPLAY_DATABASE_URL,
REDIS_URL and BENCH_REPLAY_COUNT override the defaults).
"""

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parents[2]
DB_URL = os.environ.get(
    "BENCH_REPLAY_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hub_dl_bench"
)
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
COUNT = int(os.environ.get("BENCH_REPLAY_COUNT", "10000"))
QUEUE = f"replay-bench-{uuid.uuid4().hex[:8]}"
VAR = tempfile.mkdtemp(prefix="replay-bench-")
ENV = {
    **os.environ,
    "DATABASE_URL": DB_URL,
    "REDIS_URL": REDIS_URL,
    "CELERY_BROKER_URL": REDIS_URL,
    "REPLAY_QUEUE": QUEUE,
    "REPLAY_BATCH_SIZE": "100",
    "REPLAY_CONCURRENCY_PER_SYSTEM": "4",
    "HUB_VAR_DIR": VAR,
    "LOG_LEVEL": "WARNING",
}


def recreate_database():
    parts = urlsplit(DB_URL)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "-v", "0"],
        env=ENV,
        check=True,
    )


def start_worker(name):
    cmd = [
        sys.executable, "-m", "celery", "-A", "integration_hub", "worker", "-Q", QUEUE, "-c", "1",
        "-n", f"{name}-{QUEUE}@%h", "--loglevel=WARNING", "--without-gossip", "--without-mingle",
        "--without-heartbeat",
    ]  # fmt: skip
    return subprocess.Popen(cmd, env=ENV, cwd=ROOT, start_new_session=True)


def main():
    recreate_database()
    os.environ.update(ENV)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "integration_hub.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from integration_hub.models import Plant, System
    from monitoring.models import Replay
    from monitoring.replay import requests
    from tests.events import failed
    from tests.receivers.replay import Receiver
    from tracing.ingest.pipeline import ingest_events
    from tracing.models import DeadLetter

    Plant.objects.get_or_create(code="P100", defaults={"name": "Plant 100"})
    analyst = get_user_model().objects.create_user("bench-analyst", is_staff=True)
    for start in range(0, COUNT, 1000):
        events = [
            failed(
                "received",
                correlation_id=f"PO-B{i}",
                business_keys={"order": f"B{i}"},
                error_class="transient",
                code="HTTP_503",
                payload={"order": f"B{i}", "qty": i},
                event_id=f"bench-{i}",
            )  # fmt: skip
            for i in range(start, min(start + 1000, COUNT))
        ]
        ingest_events(events)
    print(f"{DeadLetter.objects.count()} dead letters ready; starting two workers on {QUEUE}")
    workers = [start_worker("w1"), start_worker("w2")]
    with Receiver() as target:
        System.objects.filter(code="MES").update(replay_url=target.url)
        try:
            time.sleep(3)  # let the workers connect
            started = time.monotonic()
            bulk = requests.replay_selection(
                dead_letters=DeadLetter.objects.all(), requested_by=analyst, selection={}
            )
            deadline = started + 600
            while time.monotonic() < deadline:
                if not Replay.objects.filter(state__in=("queued", "sending", "held")).exists():
                    break
                time.sleep(0.2)
            elapsed = time.monotonic() - started
        finally:
            for proc in workers:
                proc.terminate()
            for proc in workers:
                proc.wait(timeout=30)
    keys = {f"hub-dl-{i}-v1" for i in DeadLetter.objects.values_list("id", flat=True)}
    replayed = DeadLetter.objects.filter(state="replayed").count()
    lost = len(keys - set(target.applied)) + (COUNT - replayed if replayed < COUNT else 0)
    lost = max(len(keys - set(target.applied)), COUNT - replayed)
    duplicated = sum(1 for n in target.seen.values() if n > 1)
    applied_twice = sum(1 for n in target.applied.values() if n > 1)
    print(f"bulk replay of {bulk.touched} dead letters, 2 worker processes, local receiver")
    print(f"  {elapsed:.1f} s, {bulk.touched / elapsed:.0f} messages/s (target >= 300/s)")
    print(f"  lost: {lost}   duplicated deliveries: {duplicated}   applied twice: {applied_twice}")
    ok = lost == 0 and duplicated == 0 and applied_twice == 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
