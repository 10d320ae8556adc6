"""A throwaway PostgreSQL server that a bench may stop: initdb in a temporary folder, its own
port, and `pg_ctl stop -m immediate` for an outage (no shutdown checkpoint, like a crash).

Run as root, the server runs as the `postgres` user (initdb refuses root). Always `remove()`
in a finally: it stops the server and deletes the folder.
"""

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.bench.common import BenchError, free_port

DEFAULT_BIN = "/usr/lib/postgresql/15/bin"


class ThrowawayPostgres:
    def __init__(self, bin_dir=None):
        self.bin = Path(bin_dir or os.environ.get("BENCH_PG_BIN", DEFAULT_BIN))
        if not (self.bin / "initdb").exists():
            raise BenchError(
                f"No initdb in {self.bin}: set BENCH_PG_BIN to PostgreSQL's bin folder."
            )
        self.folder = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        self.data, self.log_path = self.folder / "data", self.folder / "server.log"
        self.port = free_port()
        self.as_user = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self):
        return f"postgres://postgres@127.0.0.1:{self.port}/hub_overload"

    def _run(self, *args, timeout=120):
        cmd = self.as_user + [str(self.bin / args[0]), *args[1:]]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if done.returncode:
            raise BenchError(f"{' '.join(args[:2])} failed:\n{done.stdout}{done.stderr}")

    def create(self):
        """initdb (trust, user postgres), start, and create the bench database."""
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                  "hub_overload")  # fmt: skip
        return self

    def start(self):
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log_path),
                  "-w", "-t", "120", "start")  # fmt: skip

    def stop(self):
        """Stop at once, like a crash: clients lose their connections, nothing is flushed."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def remove(self):
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(BenchError, subprocess.TimeoutExpired):
                self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
