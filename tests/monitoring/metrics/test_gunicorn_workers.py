"""/metrics under gunicorn with two workers: every scrape shows the totals of both, whichever
worker answers it (counters shared through PROMETHEUS_MULTIPROC_DIR)."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[3]
TOKEN = "metrics-token-for-tests-0123456789"
SETUP = """
from integration_hub.models import ApiKey, Plant
Plant.objects.create(code="P100", name="Plant 100")
print(ApiKey.issue("gunicorn test")[1])
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url, *, data=None, headers=None):
    request = urllib.request.Request(url, data=data, headers={"Connection": "close", **headers})
    with urllib.request.urlopen(request, timeout=20) as response:
        return response.read()


def ingest_totals(text):
    totals = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "hub_ingest_events_total":
                totals[sample.labels["outcome"]] = sample.value
            if sample.name == "hub_ingest_request_seconds_count":
                totals["requests"] = sample.value
    return totals


def test_scrapes_show_the_sum_of_all_workers(tmp_path):
    env = {**os.environ, "DEBUG": "1", "DATABASE_URL": f"sqlite:///{tmp_path}/hub.sqlite3",
           "HUB_VAR_DIR": str(tmp_path / "var"), "METRICS_TOKEN": TOKEN,
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
           "CELERY_BROKER_URL": "memory://"}  # fmt: skip
    env.pop("REDIS_URL", None)
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], env=env, check=True, capture_output=True)
    setup = subprocess.run([*manage, "shell", "-c", SETUP], env=env, check=True,
                           capture_output=True, text=True)  # fmt: skip
    key = setup.stdout.strip().splitlines()[-1]
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:integration_hub.gunicorn_conf",
         "-w", "2", "-b", f"127.0.0.1:{port}", "integration_hub.wsgi"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):  # up to a minute on a busy machine
            try:
                call(f"{base}/healthz", headers={})
                break
            except OSError:
                time.sleep(0.2)
        at = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        sent, deadline = 0, time.monotonic() + 60
        # At least 16 batches, and on until both workers have answered one (the second may
        # still be loading the app when the first answers).
        while sent < 16 or (len(worker_pids(tmp_path)) < 2 and time.monotonic() < deadline):
            events = [{"event_id": f"g-{sent}-{i}", "correlation_id": f"PO-{sent}", "flow":
                       "order_release", "step": "released", "source": "ERP", "plant": "P100",
                       "occurred_at": at} for i in range(2)]  # fmt: skip
            call(f"{base}/api/v1/events", data=json.dumps({"events": events}).encode(),
                 headers={"Authorization": f"Bearer {key}",
                          "Content-Type": "application/json"})  # fmt: skip
            sent += 1
        scrapes = [
            ingest_totals(
                call(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).decode()
            )
            for _ in range(8)
        ]
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert all(s == {"accepted": 2 * sent, "requests": sent} for s in scrapes), scrapes
    assert len(worker_pids(tmp_path)) == 2, "both workers answered ingest requests"


def worker_pids(tmp_path):
    """The workers that have counted an ingest request (each keeps its own counter files)."""
    return {p.stem.rsplit("_", 1)[-1] for p in (tmp_path / "metrics").glob("histogram_*.db")}
