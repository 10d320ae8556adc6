"""Bench plumbing: the bench database, Django in this process, gunicorn, and the event stream.

Nothing here is collected by pytest (no test_ prefix); `make bench` runs tests.bench.run.
"""

import heapq
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/integration_hub_bench"
PLANTS = {  # code → (name, time zone, UTC offset used in occurred_at)
    "P100": ("Plant 100 Stuttgart", "Europe/Berlin", 1),
    "P101": ("Plant 101 Leipzig", "Europe/Berlin", 1),
    "P102": ("Plant 102 Monterrey", "America/Monterrey", -6),
    "P103": ("Plant 103 Suzhou", "Asia/Shanghai", 8),
    "P104": ("Plant 104 Greenville", "America/New_York", -5),
}


def pids_where(test):
    """Pids of this machine's processes for which test(pid) holds (Linux /proc); a process
    that ends while it is looked at is left out."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if test(int(entry)):
                    found.append(int(entry))
            except OSError:
                continue
    return found


def children(pid):
    """Pids whose parent is `pid`."""
    return pids_where(lambda child: _parent(child) == pid)


def _parent(pid):
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


class BenchError(RuntimeError):
    """A setup problem: printed as is, exit status 1."""


def run_main(main):
    """A bench's `python -m` entry: its exit status, or a setup problem printed as is."""
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        sys.exit(1)


# --- database and Django -------------------------------------------------------------------


def recreate_database(url):
    """Drop and create the bench database, connecting to the `postgres` maintenance DB."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        raise BenchError(f"BENCH_DATABASE_URL must be a postgres:// URL, not {url!r}.")
    name = parts.path.lstrip("/")
    if not name or name == "postgres":
        raise BenchError("BENCH_DATABASE_URL must name a database other than 'postgres'.")
    admin = urlunsplit(parts._replace(path="/postgres"))
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        raise BenchError(
            f"PostgreSQL is not reachable at {admin} ({str(exc).strip()}).\n"
            "Start it, or set BENCH_DATABASE_URL=postgres://user@host:port/integration_hub_bench"
        ) from None


def server_env(url):
    """Environment for gunicorn and for Django in this process: production mode on `url`."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=url,
        DEBUG="0",
        SECURE_SSL_REDIRECT="0",  # the bench talks plain HTTP on loopback
        SECURE_HSTS_SECONDS="0",
        SECRET_KEY=secrets.token_urlsafe(48),
        ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SETTINGS_MODULE="integration_hub.settings",
        LOG_LEVEL="WARNING",
    )
    return env


def setup_django(env):
    """Configure Django here against the bench database, migrate, seed plants; return API key."""
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    from integration_hub.models import ApiKey, Plant

    for code, (name, tz, _) in PLANTS.items():
        Plant.objects.create(code=code, name=name, timezone=tz)
    _, raw = ApiKey.issue("bench reporter")
    return raw


def psql(url):
    """A plain psycopg connection (autocommit) for counts, COPY and maintenance."""
    return psycopg.connect(url, autocommit=True)


# --- gunicorn ------------------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    """`gunicorn integration_hub.wsgi -w N` (or another WSGI `app`) on a free port, its workers'
    peak RSS, and stop."""

    def __init__(self, env, workers=2, extra_args=(), app="integration_hub.wsgi"):
        self.env, self.workers, self.extra_args, self.app = env, workers, list(extra_args), app
        self.port = free_port()
        fd, name = tempfile.mkstemp(prefix="bench-gunicorn-", suffix=".log")
        os.close(fd)
        self.log_path, self.proc = Path(name), None

    def start(self, timeout=30):
        cmd = [
            str(Path(sys.executable).parent / "gunicorn"),
            self.app,
            "-w", str(self.workers),
            "-b", f"127.0.0.1:{self.port}",
            "--timeout", "120",
            *self.extra_args,
        ]  # fmt: skip
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"gunicorn exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as resp:
                    if resp.status == 200 and len(self.worker_pids()) == self.workers:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        tail = self.log_tail()
        self.stop()
        raise BenchError(f"gunicorn did not answer /healthz in {timeout} s:\n{tail}")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self):
        return children(self.proc.pid)

    def worker_peak_mb(self):
        """Max VmHWM (peak resident set) over the worker processes, in MB."""
        peaks = []
        for pid in self.worker_pids():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
        return max(peaks) if peaks else float("nan")

    def log_tail(self, lines=30):
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_path.unlink(missing_ok=True)


# --- realistic events ----------------------------------------------------------------------

EVENTS_PER_ORDER = 23.0  # measured mean of one order's journey below; spaces orders in time
ERRORS = {
    "order_release": [
        ("master_data", "ROUTING_NOT_FOUND", "Routing R-{m}-02 for material {m} not released"),
        ("schema", "IDOC_STATUS_51", "Segment E1AFKOL: field GSTRS missing"),
    ],
    "material_consumption": [
        ("business_rule", "M7-021", "Deficit of SL Unrestricted-use 2.5 KG : {m} 0001"),
        ("master_data", "M7-001", "Batch not found for material {m}"),
    ],
    "production_confirmation": [
        ("business_rule", "RU-505", "Order already technically completed (status TECO)"),
        ("transient", "HTTP_503", "ERP OData service unavailable"),
    ],
    "goods_receipt": [("business_rule", "M7-094", "Quantity exceeds order quantity for {m}")],
    "inventory_movement": [("master_data", "M7-127", "Storage location 0002 not defined")],
    "quality_hold": [("transient", "TIMEOUT", "MES did not acknowledge the lock in 30 s")],
    "shipment_confirmation": [
        ("schema", "XSD_VALIDATION", "Element 'GoodsIssueDate' is not a valid xs:dateTime")
    ],
}


class EventStream:
    """An endless, deterministic stream of trace events in occurred_at order.

    One production order at a time (spaced so `total` events span `span` ending a day ago):
    its release, consumptions, confirmations, goods receipt, sometimes a quality hold and a
    shipment, and an unrelated inventory movement. About 3.5 events per transaction, ~4 % of
    transactions with a failed/rejected hop (error + payload), ~1 % left incomplete.
    """

    def __init__(self, total, *, seed=4711, span=timedelta(days=7)):
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self.start = today - timedelta(days=1) - span
        self.mean_gap = span.total_seconds() / max(1.0, total / EVENTS_PER_ORDER)
        self.rng = random.Random(seed)

    def __iter__(self):
        heap, seq, t, n = [], 0, self.start, 0
        while True:
            t += timedelta(seconds=self.rng.expovariate(1 / self.mean_gap))
            while heap and heap[0][0] <= t:
                yield heapq.heappop(heap)[2]
            for at, event in self._journey(n, t):
                heapq.heappush(heap, (at, seq, event))
                seq += 1
            n += 1

    def take(self, iterator, count):
        return [next(iterator) for _ in range(count)]

    # One order's journey.
    def _journey(self, n, t0):
        r = self.rng
        order, plant = str(1_000_000 + n), r.choice(list(PLANTS))
        fg = f"FG-{4000 + r.randrange(400)}"
        lot = f"FG-26-{n:06d}"
        hdr = {"plant": plant, "n": n}
        out = self._txn(
            "order_release", f"PO-{order}", {"order": order, "material": fg}, t0,
            [("released", "ERP", "MES"), ("received", "MW", "MES"), ("acknowledged", "MES", "ERP")],
            {"ProductionOrder": {
                "ID": order, "Material": fg, "Plant": plant,
                "Quantity": {"value": r.randrange(10, 500), "uom": "EA"},
                "Routing": f"R-{fg[3:]}-01", "BOMRevision": r.choice("ABC"),
                "ScheduledStart": self._iso(t0 + timedelta(hours=1), plant),
            }}, hdr,
        )  # fmt: skip
        t = t0 + timedelta(minutes=r.uniform(5, 30))
        for i in range(r.choice((1, 2))):
            rm, rlot = f"RM-{100 + r.randrange(800)}", f"L-26-{r.randrange(100000):05d}"
            out += self._txn(
                "material_consumption", f"GI-{order}-{i + 1}",
                {"order": order, "material": rm, "lot": rlot}, t + timedelta(minutes=10 * i),
                [("consumed", "MES", "MW"), ("consumed", "MW", "ERP"), ("posted", "ERP", "MES"),
                 ("posted", "WMS", "MES")],
                {"GoodsMovement": {
                    "MovementType": "261", "Order": order, "Material": rm, "Batch": rlot,
                    "Quantity": round(r.uniform(1, 50), 1), "Unit": "KG",
                    "StorageLocation": "0001",
                }}, hdr,
            )  # fmt: skip
        t += timedelta(minutes=r.uniform(10, 60))
        for i in range(r.choice((1, 2))):
            op = f"{(i + 1) * 10:04d}"
            out += self._txn(
                "production_confirmation", f"CF-{order}-{op}", {"order": order, "operation": op},
                t + timedelta(minutes=15 * i),
                [("confirmed", "MES", "MW"), ("confirmed", "MW", "ERP"), ("posted", "ERP", "MES")],
                {"Confirmation": {
                    "Order": order, "Operation": op, "Yield": r.randrange(10, 500),
                    "Scrap": r.randrange(0, 5), "Unit": "EA", "FinalConfirmation": i == 1,
                    "WorkCenter": f"WC-L{r.randrange(1, 6)}",
                }}, hdr,
            )  # fmt: skip
        t += timedelta(minutes=r.uniform(20, 40))
        hu = f"HU-{n:08d}"
        out += self._txn(
            "goods_receipt", f"GR-{order}-1", {"order": order, "lot": lot, "handling_unit": hu}, t,
            [("completed", "MES", "WMS"), ("received", "WMS", "ERP"), ("posted", "ERP", "MES"),
             ("posted", "ERP", "WMS")],
            {"GoodsReceipt": {
                "MovementType": "101", "Order": order, "Material": fg, "Batch": lot,
                "Quantity": r.randrange(10, 500), "Unit": "EA", "HandlingUnit": hu,
            }}, hdr,
        )  # fmt: skip
        if r.random() < 0.05:
            nc = f"NC-2026-{n:06d}"
            out += self._txn(
                "quality_hold", nc, {"lot": lot, "nonconformance": nc, "material": fg},
                t + timedelta(minutes=r.uniform(1, 30)),
                [("hold_applied", "QMS", "ERP"), ("hold_propagated", "MW", "ERP"),
                 ("hold_propagated", "MW", "MES"), ("hold_propagated", "MW", "WMS"),
                 ("released", "QMS", "ERP")],
                {"Nonconformance": {
                    "ID": nc, "Lot": lot, "Characteristic": "Bore diameter",
                    "Measured": round(r.uniform(11.9, 12.1), 3), "Tolerance": "12.00 +/- 0.05 mm",
                    "Severity": r.choice(("minor", "major")),
                }}, hdr, last_gap=(3600, 4 * 3600),
            )  # fmt: skip
        if r.random() < 0.5:
            dlv = f"80{n:08d}"
            out += self._txn(
                "shipment_confirmation", f"DLV-{dlv}", {"delivery": dlv, "order": order},
                t + timedelta(minutes=r.uniform(60, 180)),
                [("shipped", "WMS", "MW"), ("shipped", "MW", "ERP"), ("posted", "ERP", "WMS")],
                {"ShipmentConfirmation": {
                    "Delivery": dlv, "Carrier": r.choice(("DHL", "UPS", "DB Schenker")),
                    "TrackingNo": f"JJD{r.randrange(10**9):010d}",
                    "Items": [{"Item": "000010", "Material": fg, "Quantity": r.randrange(1, 100),
                               "Unit": "EA"}],
                }}, hdr,
            )  # fmt: skip
        rm, rlot = f"RM-{100 + r.randrange(800)}", f"L-26-{r.randrange(100000):05d}"
        out += self._txn(
            "inventory_movement", f"TO-{n:07d}", {"material": rm, "lot": rlot},
            t0 + timedelta(minutes=r.uniform(0, 120)),
            [("moved", "WMS", "MW"), ("moved", "MW", "ERP"), ("posted", "ERP", "WMS")],
            {"Transfer": {
                "MovementType": "311", "Material": rm, "Batch": rlot, "From": "0001",
                "To": "0002", "Quantity": r.randrange(10, 1000), "Unit": "KG",
            }}, hdr,
        )  # fmt: skip
        return out

    def _txn(self, flow, corr, keys, t, hops, body, hdr, last_gap=(1, 90)):
        """Events of one transaction: (occurred_at, event dict) pairs."""
        r, plant = self.rng, hdr["plant"]
        payload = {
            "Header": {
                "MessageId": f"{r.getrandbits(128):032x}",
                "Sender": f"{hops[0][1]}-{plant}",
                "Interface": f"{flow.upper()}_V2",
                "CreatedAt": self._iso(t, plant),
            },
            **body,
        }
        fail_at = r.randrange(1, len(hops)) if r.random() < 0.04 else None
        if r.random() < 0.01:
            hops = hops[:-1]  # never completes: in flight, then stuck
        events, k = [], 0

        def emit(step, src, tgt, at, **extra):
            nonlocal k
            k += 1
            event = {
                "event_id": f"{src.lower()}-{corr}-{k}",
                "correlation_id": corr,
                "flow": flow,
                "step": step,
                "source": src,
                "target": tgt,
                "plant": plant,
                "occurred_at": self._iso(at, plant),
                "business_keys": keys if k == 1 else {n: keys[n] for n in list(keys)[:1]},
                **extra,
            }
            events.append((at, event))

        for i, (step, src, tgt) in enumerate(hops):
            if i:
                t += timedelta(seconds=r.uniform(*(last_gap if i == len(hops) - 1 else (1, 90))))
            if i == fail_at:
                kind, code, msg = r.choice(ERRORS[flow])
                error = {"class": kind, "code": code, "message": msg.format(m=keys.get("material"))}
                emit(step, src, tgt, t, status=r.choice(("failed", "rejected")), error=error,
                     payload=payload)  # fmt: skip
                if r.random() < 0.4:
                    break  # left failed, waiting for triage and replay
                t += timedelta(seconds=r.uniform(60, 900))
            elif r.random() < 0.05 and i:
                error = {"class": "transient", "code": "HTTP_503", "message": "Service unavailable"}
                emit(step, src, tgt, t, status="retrying", error=error)
                t += timedelta(seconds=r.uniform(5, 60))
            if i == 0:
                emit(step, src, tgt, t, payload=payload)
            elif r.random() < 0.3:
                emit(step, src, tgt, t, attributes={"message_id": f"{r.getrandbits(64):016x}"})
            else:
                emit(step, src, tgt, t)
        return events

    @staticmethod
    def _iso(at, plant):
        offset = timezone(timedelta(hours=PLANTS[plant][2]))
        return at.astimezone(offset).isoformat(timespec="milliseconds")


def fmt_int(n):
    return f"{n:,}"


def log(message):
    print(f"  .. {message}", file=sys.stderr, flush=True)
