"""Bench plumbing for long runs: background processes with a log file, and their memory."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.common import ROOT, BenchError


def rss_mb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class Background:
    """A child process with its output in a temporary log file."""

    def __init__(self, name, cmd, env):
        self.name = name
        fd, path = tempfile.mkstemp(prefix=f"bench-soak-{name}-", suffix=".log")
        self.log_path = Path(path)
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=fd, stderr=subprocess.STDOUT, start_new_session=True
        )
        os.close(fd)

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def text(self):
        return self.log_path.read_text(errors="replace")

    def wait_for(self, line, timeout=60):
        """Until the process has printed `line` (it is ready); BenchError if it exits first or
        takes longer than `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while line not in self.text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"{self.name} did not print {line!r}:\n{self.text()[-2000:]}")
            time.sleep(0.05)
        return self


def manage(*args):
    return [sys.executable, str(ROOT / "manage.py"), *args]


def celery(*args):
    return [sys.executable, "-m", "celery", "-A", "integration_hub", *args]
