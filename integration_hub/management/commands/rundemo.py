"""Runs the demo: web server, a real Celery worker and beat, and the plant simulator."""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import get_commands
from django.core.management.base import BaseCommand

# A burst of backdated history next to the live simulator: 60 orders, with this seed and fault
# rate, include a hold that never reached WMS and a release WMS never heard of (tested), so the
# reconciliation list is not empty in the demo's first minutes.
HISTORY = ["--once", "60", "--seed", "16", "--fault-rate", "0.3"]


class Command(BaseCommand):
    help = "Run web, Celery worker, Celery beat (and the simulator) together; Ctrl-C stops all."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")
        parser.add_argument("--no-simulator", action="store_true")

    def handle(self, *args, addr, no_simulator, **options):
        python = sys.executable
        manage = [python, str(settings.BASE_DIR / "manage.py")]
        celery = [python, "-m", "celery", "-A", "integration_hub"]
        procs = {
            "web": manage + ["runserver", addr, "--noreload"],
            "worker": celery + ["worker", "--loglevel=INFO", "--concurrency=2", "-n", "demo@%h"],
            "beat": celery
            + ["beat", "--loglevel=INFO", "-s", settings.CELERY_BEAT_SCHEDULE_FILENAME],
        }
        if "webhook_receiver" in get_commands():
            # Where the demo's webhook alert channel delivers; prints each signed notice.
            procs["webhooks"] = manage + ["webhook_receiver", "--addr", "127.0.0.1:8765"]
        # Stands in for the systems' replay endpoints (ensure_demo_replay_endpoints).
        procs["replays"] = manage + ["replay_receiver", "--addr", "127.0.0.1:8766"]
        if not no_simulator and "simulate" in get_commands():
            procs["simulator"] = manage + ["simulate", "--url", f"http://{addr}", "--wait-ready"]
            procs["history"] = procs["simulator"] + HISTORY
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        running = {}
        for name, cmd in procs.items():
            self.stdout.write(f"starting {name}: {' '.join(cmd[1:])}")
            running[name] = subprocess.Popen(cmd, env=env, start_new_session=True)
        self.stdout.write(self.style.SUCCESS(f"Demo running at http://{addr}/ — Ctrl-C stops it."))
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                for name, proc in running.items():
                    if proc.poll() is not None and name not in (
                        "simulator",
                        "history",
                        "webhooks",
                        "replays",
                    ):
                        self.stderr.write(
                            f"{name} exited with {proc.returncode}; stopping the demo"
                        )
                        stopping = True
                time.sleep(0.5)
        finally:
            self._stop_all(running)

    def _stop_all(self, running):
        """Stop traffic first, then the web server, beat and the worker (warm shutdown)."""
        for name in ("simulator", "web", "beat", "worker", "webhooks", "replays"):
            proc = running.get(name)
            if proc is None:
                continue
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            self.stdout.write(f"stopped {name}")
