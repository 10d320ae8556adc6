"""Delivering replays: claim a batch, hold a per-system slot, POST each, record the outcome.

The database is the source of truth for work in flight. A `Replay` row is `queued` until a
worker claims it with a conditional UPDATE (state queued → sending, with a lease); the outcome
is recorded on the row, one `ReplayAttempt` per delivery. A worker killed mid-run leaves rows
`sending` with a lease that runs out; `sweep()` (beat) puts them back in the queue. A re-sent
replay carries the same Idempotency-Key, so the target applies it at most once.
"""

import http.client
import logging
import random
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from monitoring.models import Replay, ReplaySlot
from monitoring.replay.outcomes import record
from monitoring.replay.preview import encode, request_headers
from monitoring.replay.slots import acquire_slot, release_slot
from tracing.dead_letters.superseded import is_superseded

log = logging.getLogger(__name__)


EXCERPT = 2000


RETRYABLE_STATUS = frozenset({408, 429})


def claim(replay_ids, *, token, now=None):
    """Claim queued, due replays atomically (queued → sending, with a lease); return them."""
    now = now or timezone.now()
    Replay.objects.filter(id__in=replay_ids, state="queued", not_before__lte=now).update(
        state="sending",
        claim_token=token,
        lease_until=now + timedelta(seconds=settings.REPLAY_LEASE_SECONDS),
        attempt_count=F("attempt_count") + 1,
    )
    return list(
        Replay.objects.filter(claim_token=token, state="sending")
        .select_related(
            "target",
            "requested_by",
            "dead_letter__flow",
            "dead_letter__plant",
            "dead_letter__target",
            "dead_letter__transaction",
        )
        .order_by("rank", "id")
    )


_connections = {}


def http_post(url, body, headers, *, timeout):
    """POST without following redirects over a kept-alive connection: (status, headers, body)."""
    parts = urlsplit(url)
    key = (parts.scheme, parts.hostname, parts.port)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    for fresh in (False, True):
        conn = _connections.get(key)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            cls = (
                http.client.HTTPSConnection
                if parts.scheme == "https"
                else http.client.HTTPConnection
            )
            conn = _connections[key] = cls(parts.hostname, parts.port, timeout=timeout)
        conn.timeout = timeout
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read(64 * 1024)
            if not response.isclosed():
                conn.close()
                _connections.pop(key, None)
            return response.status, dict(response.getheaders()), data
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            _connections.pop(key, None)
            conn.close()
            if fresh:
                raise
        except Exception:
            _connections.pop(key, None)
            conn.close()
            raise
    raise AssertionError("unreachable")


def retry_after_seconds(value, now):
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
    except (TypeError, ValueError):
        return None


def backoff_seconds(attempt, retry_after=None):
    """Exponential backoff with jitter, at least what Retry-After asked, capped."""
    delay = min(
        settings.REPLAY_BACKOFF_MAX_SECONDS, settings.REPLAY_BACKOFF_SECONDS * 2 ** (attempt - 1)
    )
    delay = random.uniform(delay / 2, delay)
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.REPLAY_RETRY_AFTER_MAX_SECONDS))
    return delay


@dataclass
class Delivery:
    replay: Replay
    started_at: object
    duration_ms: int = 0
    url: str = ""
    status_code: int | None = None
    response: str = ""
    error: str = ""
    outcome: str = "failed"
    delay: float = 0.0
    extra: dict = field(default_factory=dict)


def deliver(replay, *, now=None):
    """POST one claimed replay to its target; classify the answer. No database writes.

    Never raises: whatever goes wrong with this one delivery is its recorded failure, so the
    rest of the batch is still sent and every outcome recorded.
    """
    now = now or timezone.now()
    result = Delivery(replay=replay, started_at=now, url=replay.target.replay_url)
    try:
        return _deliver(replay, result, now)
    except Exception as exc:  # a header the target config makes invalid, a bug: this one only
        log.exception("replay %s could not be sent", replay.pk)
        result.outcome, result.delay = "failed", 0.0
        result.error = f"Not sent: {type(exc).__name__}: {exc}"[:EXCERPT]
        return result


def _deliver(replay, result, now):
    system = replay.target
    if not system.replay_url:
        result.error = f"{system.code} has no replay endpoint any more."
        return result
    headers = request_headers(
        system=system, key=replay.idempotency_key, correlation_id=replay.dead_letter.correlation_id
    )
    started = time.monotonic()
    retry_after = None
    status = None
    try:
        status, response_headers, body = http_post(
            system.replay_url,
            encode(replay.payload),
            headers,
            timeout=settings.REPLAY_TIMEOUT_SECONDS,
        )
    except (OSError, http.client.HTTPException) as exc:
        result.error = f"{type(exc).__name__}: {exc}"[:EXCERPT] or "connection failed"
    else:
        result.response = body[:EXCERPT].decode("utf-8", "replace")
        headers_lower = {k.lower(): v for k, v in response_headers.items()}
        retry_after = retry_after_seconds(headers_lower.get("retry-after"), now)
        if 300 <= status < 400:
            result.error = (
                f"HTTP {status}: redirect to {headers_lower.get('location', '?')} not followed."
            )
    result.duration_ms = int((time.monotonic() - started) * 1000)
    result.status_code = status
    if status is not None and 200 <= status < 300:
        result.outcome = "succeeded"
    elif status is None or status in RETRYABLE_STATUS or status >= 500:
        if replay.attempt_count < settings.REPLAY_MAX_ATTEMPTS:
            result.outcome = "retry"
            result.delay = backoff_seconds(replay.attempt_count, retry_after)
        else:
            result.outcome = "failed"
            result.error = (
                result.error or f"HTTP {status}; gave up after {replay.attempt_count} attempts."
            )
    else:
        result.outcome = "failed"
        result.error = result.error or f"HTTP {status}: the target refused it."
    return result


def deliver_batch(replay_ids, *, now=None):
    """Claim, send and record a batch of replays, one target system at a time.

    Contract: each id is sent at most once per claim; replays another worker holds, or not yet
    due, are left alone. Returns {"claimed", "succeeded", "retry", "failed", "busy"}; `busy`
    lists ids whose target had no free slot (the caller re-enqueues those).
    """
    summary = defaultdict(int)
    summary["busy"] = []
    targets = defaultdict(list)
    for replay_id, target_id in Replay.objects.filter(
        id__in=replay_ids, state="queued"
    ).values_list("id", "target_id"):
        targets[target_id].append(replay_id)
    for target_id, ids in targets.items():
        token = uuid.uuid4().hex
        slot = acquire_slot(target_id, token, now=now)
        if slot is None:
            summary["busy"].extend(ids)
            continue
        try:
            _deliver_claimed(ids, token, slot, summary)
        finally:
            release_slot(slot, token)
    return dict(summary)


def _deliver_claimed(ids, token, slot, summary):
    claimed = claim(ids, token=token)
    summary["claimed"] += len(claimed)
    rate = settings.REPLAY_RATE_PER_SYSTEM
    interval = settings.REPLAY_CONCURRENCY_PER_SYSTEM / rate if rate else 0
    lease = timedelta(seconds=settings.REPLAY_LEASE_SECONDS)
    renew_at = timezone.now() + lease / 2
    results = []
    for replay in claimed:
        letter = replay.dead_letter
        if replay.bulk_id and is_superseded(letter, letter.transaction, letter.flow):
            results.append(Delivery(replay=replay, started_at=timezone.now(), outcome="superseded"))
            continue
        tick = time.monotonic()
        results.append(deliver(replay))
        now = timezone.now()
        if now > renew_at:
            Replay.objects.filter(claim_token=token, state="sending").update(
                lease_until=now + lease
            )
            ReplaySlot.objects.filter(pk=slot.pk, holder=token).update(lease_until=now + lease)
            renew_at = now + lease / 2
        if interval:
            time.sleep(max(0.0, interval - (time.monotonic() - tick)))
    record(results, token=token)
    for result in results:
        summary[result.outcome] += 1
