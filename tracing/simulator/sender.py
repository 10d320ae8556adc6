"""Posts simulated events to the ingest API in batches, with retries and a paced runner."""

import http.client
import json
import math
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime

# -- sending ----------------------------------------------------------------------------------


class ApiRefused(Exception):
    """The API refused the key; retrying will not help."""


class _Retryable(Exception):
    pass


class _Undeliverable(Exception):
    pass


@dataclass
class Stats:
    """What was sent and what the API made of it."""

    started: float
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    dropped: int = 0
    orders: int = 0

    def line(self, now):
        """One progress line: sent, accepted, duplicates, rejected, orders, events per second."""
        rate = self.sent / max(now - self.started, 1e-6)
        text = (
            f"sent {self.sent:,} events (accepted {self.accepted:,}, "
            f"duplicates {self.duplicates:,}, rejected {self.rejected:,}) "
            f"· {self.orders:,} orders · {rate:.1f} ev/s"
        )
        if self.dropped:
            text += f" · {self.dropped:,} undelivered"
        return text


class Client:
    """Posts batches to POST {url}/api/v1/events, retrying with backoff while the API is away."""

    def __init__(self, url, key, *, warn=print, attempts=5, backoff=1.0, timeout=30, sleep=None):
        self.endpoint = url.rstrip("/") + "/api/v1/events"
        self.key, self.warn = key, warn
        self.attempts, self.backoff, self.timeout = attempts, backoff, timeout
        self.sleep = sleep or time.sleep

    def post(self, events):
        """The API's answer for a batch, or None when it could not be delivered."""
        body = json.dumps({"events": events}).encode()
        for attempt in range(1, self.attempts + 1):
            try:
                return self._send(body)
            except _Retryable as exc:
                self.warn(
                    f"batch of {len(events)} events: {exc} (attempt {attempt}/{self.attempts})"
                )
            except _Undeliverable as exc:
                self.warn(f"batch of {len(events)} events not accepted: {exc}")
                return None
            if attempt < self.attempts:
                self.sleep(self.backoff * 2 ** (attempt - 1))
        self.warn(f"gave up on a batch of {len(events)} events")
        return None

    def _send(self, body):
        request = urllib.request.Request(
            self.endpoint,
            data=body,
            method="POST",
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return self._answer_for_error(exc)
        except urllib.error.URLError as exc:
            raise _Retryable(str(exc.reason)) from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from None

    def _answer_for_error(self, exc):
        text = exc.read().decode("utf-8", "replace")
        summary = f"HTTP {exc.code}: {text[:300]}"
        if exc.code == 400:
            try:
                answer = json.loads(text)
            except ValueError:
                answer = None
            if isinstance(answer, dict) and "rejected" in answer:
                return answer
        if exc.code in (401, 403):
            raise ApiRefused(summary)
        if exc.code in (408, 429) or exc.code >= 500:
            raise _Retryable(summary)
        raise _Undeliverable(summary)


def wait_ready(url, *, timeout=60, out=print, sleep=time.sleep, clock=time.monotonic):
    """Poll {url}/readyz until it answers 200; whether it did within `timeout` seconds."""
    deadline = clock() + timeout
    probe = url.rstrip("/") + "/readyz"
    out(f"waiting for {probe} …")
    last = "no answer yet"
    while clock() < deadline:
        try:
            with urllib.request.urlopen(probe, timeout=5) as response:
                if response.status == 200:
                    return True
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            last = str(getattr(exc, "reason", exc))
        sleep(1)
    out(f"{probe} not ready after {timeout:.0f} s ({last})")
    return False


class Runner:
    """Sends (due, event) pairs when they fall due, in batches, and prints progress."""

    def __init__(
        self,
        client,
        *,
        out=print,
        batch_size=200,
        flush_every=0.5,
        progress_every=5.0,
        clock=time.monotonic,
        sleep=time.sleep,
        now=None,
    ):
        self.client, self.out = client, out
        self.batch_size, self.flush_every, self.progress_every = (
            batch_size,
            flush_every,
            progress_every,
        )
        self.clock, self.sleep = clock, sleep
        self.now = now or (lambda: datetime.now(UTC))
        self.stats = Stats(started=clock())
        self.batch = []
        self._batch_since = None
        self._last_progress = self.stats.started
        self._orders = set()
        self._shown_rejections = 0

    def run(self, events, *, fast=False, duration=0):
        """Send events as they fall due (or at once if fast) until done, duration or Ctrl-C."""
        deadline = self.clock() + duration if duration else math.inf
        try:
            for due, event in events:
                if not fast and not self._wait_until(due, deadline):
                    break
                if self.clock() >= deadline:
                    break
                self._add(event)
                self._tick()
        except KeyboardInterrupt:
            self.out("interrupted: sending what is buffered, then stopping")
        try:
            self.flush()
        except KeyboardInterrupt:
            self.stats.dropped += len(self.batch)
        return self.stats

    def _add(self, event):
        if not self.batch:
            self._batch_since = self.clock()
        self.batch.append(event)

    def _wait_until(self, due, deadline):
        """Sleep until due, flushing and reporting meanwhile; False if the deadline came first."""
        while True:
            remaining = (due - self.now()).total_seconds()
            if remaining <= 0:
                return True
            if self.clock() >= deadline:
                return False
            self._tick()
            step = min(remaining, self.flush_every, max(deadline - self.clock(), 0))
            self.sleep(max(step, 0.001))

    def _tick(self):
        """Flush a full or old batch, and print progress when it is time."""
        now = self.clock()
        if self.batch and (
            len(self.batch) >= self.batch_size or now - self._batch_since >= self.flush_every
        ):
            self.flush()
        if now - self._last_progress >= self.progress_every:
            self._last_progress = now
            self.out(self.stats.line(self.clock()))

    def flush(self):
        """Post the buffered events and count the API's answer."""
        if not self.batch:
            return
        batch, self.batch = self.batch, []
        answer = self.client.post(batch)
        if answer is None:
            self.stats.dropped += len(batch)
            return
        rejected = answer.get("rejected") or []
        self.stats.sent += len(batch)
        self.stats.accepted += answer.get("accepted", 0)
        self.stats.duplicates += answer.get("duplicates", 0)
        self.stats.rejected += len(rejected)
        self._orders.update(
            e["correlation_id"]
            for e in batch
            if e["flow"] == "order_release" and e["step"] == "released"
        )
        self.stats.orders = len(self._orders)
        for item in rejected[: max(0, 5 - self._shown_rejections)]:
            self._shown_rejections += 1
            self.out(f"rejected {item.get('event_id')}: {item.get('errors')}")
