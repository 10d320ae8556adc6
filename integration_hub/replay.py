"""Replay: a dead letter POSTed again to its target system, safely and on the record.

The database is the source of truth for work in flight. A `Replay` row is `queued` until a
worker claims it with a conditional UPDATE (state queued → sending, with a lease); the outcome
is recorded on the row, one `ReplayAttempt` per delivery. A worker killed mid-run leaves rows
`sending` with a lease that runs out; `sweep()` (beat) puts them back in the queue. A re-sent
replay carries the same Idempotency-Key, so the target applies it at most once.
"""

import difflib
import http.client
import json
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
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from integration_hub.deadletters import is_superseded, mark_superseded
from integration_hub.models import (
    ACTIVE_REPLAY_STATES,
    BulkAction,
    DeadLetter,
    DeadLetterChange,
    Replay,
    ReplayAttempt,
    ReplaySlot,
)

log = logging.getLogger(__name__)
UNCHANGED = object()
EXCERPT = 2000
RETRYABLE_STATUS = frozenset({408, 429})
SENSITIVE = ("authorization", "cookie", "token", "secret", "api-key", "apikey", "password")


class ReplayError(Exception):
    """A replay that cannot be asked for; `field` names what is wrong, `status` the HTTP code."""

    status = 409

    def __init__(self, message, field="non_field_errors"):
        super().__init__(message)
        self.field = field


class NoReplayEndpoint(ReplayError):
    pass


class NotReplayable(ReplayError):
    pass


class InvalidPayload(ReplayError):
    status = 400


def _conf(name):
    return getattr(settings, name)


# --- what would be sent --------------------------------------------------------------------


def destination(letter):
    """The system a replay goes to (the dead letter's target) with its registered endpoint."""
    system = letter.target
    if system is None:
        raise NoReplayEndpoint(
            "This dead letter names no target system, so there is nowhere to replay it to.",
            "target",
        )
    if not system.replay_url:
        raise NoReplayEndpoint(
            f"{system.code} has no replay endpoint. Set its replay_url in the catalog "
            f"(admin, or PATCH /api/v1/systems/{system.code}) and try again.",
            "target",
        )
    return system


def idempotency_key(dead_letter_id, version):
    """Stable for one dead letter and payload version: a re-sent delivery carries the same key."""
    return f"hub-dl-{dead_letter_id}-v{version}"


def request_headers(*, system, key, correlation_id, mask=False):
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": key,
        "X-Correlation-ID": correlation_id,
        "User-Agent": "integration-hub-replay/1",
    }
    if system.replay_auth_header and system.replay_auth_value:
        headers[system.replay_auth_header] = "********" if mask else system.replay_auth_value
    return headers


def mask_headers(headers):
    """Headers for display: values of credentials replaced."""
    return {
        name: "********" if any(s in name.lower() for s in SENSITIVE) else value
        for name, value in (headers or {}).items()
    }


def encode(payload):
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def pretty(payload):
    return json.dumps(payload, ensure_ascii=False, indent=2, sort_keys=False)


def parse_payload(text):
    """An edited payload typed by a person: JSON or InvalidPayload naming the line."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidPayload(
            f"Not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}.", "payload"
        ) from None


def payload_diff(original, edited):
    lines = difflib.unified_diff(
        pretty(original).splitlines(),
        pretty(edited).splitlines(),
        fromfile="original",
        tofile="edited",
        lineterm="",
    )
    return "\n".join(lines)


def preview(letter, payload=UNCHANGED):
    """Exactly what a replay would send now: URL, headers (secrets masked), body, and a diff."""
    system = destination(letter)
    edited = payload is not UNCHANGED and payload != letter.current_payload
    body = payload if edited else letter.current_payload
    version = letter.payload_version + 1 if edited else letter.payload_version
    warnings = []
    if letter.superseded_at:
        warnings.append(
            "Superseded: its transaction reached this milestone later. Replaying would send it "
            "twice; resolve it instead unless you are sure."
        )
    return {
        "method": "POST",
        "url": system.replay_url,
        "headers": request_headers(
            system=system,
            key=idempotency_key(letter.id, version),
            correlation_id=letter.correlation_id,
            mask=True,
        ),
        "body": pretty(body),
        "payload_version": version,
        "diff": payload_diff(letter.payload, body) if version > 1 else "",
        "warnings": warnings,
    }


# --- asking for replays --------------------------------------------------------------------


def rank_of(letter):
    """Where a step falls in a business journey: flow position, then milestone."""
    milestones = letter.flow.milestones
    index = milestones.index(letter.step) if letter.step in milestones else 0
    return letter.flow.position * 100 + index


def _blockers(business_keys):
    """business key → ranks of its open, not superseded dead letters."""
    ranks = defaultdict(list)
    if not business_keys:
        return ranks
    rows = DeadLetter.objects.filter(
        business_key__in=business_keys,
        state__in=DeadLetter.OPEN_STATES,
        superseded_at__isnull=True,
    ).select_related("flow")
    for letter in rows.only("id", "business_key", "step", "flow__position", "flow__milestones"):
        ranks[letter.business_key].append(rank_of(letter))
    return ranks


def _is_held(business_key, rank, blockers):
    return bool(business_key) and any(r < rank for r in blockers.get(business_key, ()))


def request_replay(*, dead_letter, requested_by, payload=UNCHANGED, reason="", now=None):
    """Queue one dead letter for replay (as is, or with an edited payload and a reason)."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    with transaction.atomic():
        letter = (
            DeadLetter.objects.select_for_update(of=("self",))
            .select_related("target", "flow")
            .get(pk=dead_letter.pk)
        )
        if letter.state not in ("new", "investigating"):
            raise NotReplayable(
                f"It is {letter.get_state_display().lower()}; only new or investigating dead "
                "letters can be replayed.",
                "state",
            )
        system = destination(letter)
        if payload is not UNCHANGED and payload != letter.current_payload:
            if not reason:
                raise InvalidPayload("Say why the payload was edited.", "reason")
            letter.edit_payload(payload, reason=reason, by=requested_by, now=now)
        replay = Replay.objects.create(
            dead_letter=letter,
            target=system,
            requested_by=requested_by,
            requested_at=now,
            reason=reason,
            payload=letter.current_payload,
            payload_version=letter.payload_version,
            idempotency_key=idempotency_key(letter.id, letter.payload_version),
            state="queued",
            rank=rank_of(letter),
            business_key=letter.business_key,
            not_before=now,
            lease_until=now + timedelta(seconds=_conf("REPLAY_LEASE_SECONDS")),
        )
        letter.move_to("replay_queued", by=requested_by, text=reason or "Replay requested", now=now)
        pairs = [(replay.id, system.id)]
        transaction.on_commit(lambda: enqueue(pairs))
    dead_letter.refresh_from_db()
    return replay


def replay_selection(*, dead_letters, requested_by, reason="", selection=None, now=None):
    """Queue a selection for replay as one bulk action; return the BulkAction.

    Leaves out superseded, closed or already queued dead letters and those whose target has no
    replay endpoint (counted in `skipped`). Per business key, holds a later step while an
    earlier step of the same order is still dead-lettered (released when that one closes).
    """
    now = now or timezone.now()
    dead_letters = DeadLetter.objects.filter(id__in=dead_letters.values("id"))
    mark_superseded(dead_letters, now=now)
    lease = timedelta(seconds=_conf("REPLAY_LEASE_SECONDS"))
    with transaction.atomic():
        rows = list(
            dead_letters.select_for_update(of=("self",))
            .select_related("target", "flow")
            .order_by("id")
        )
        skipped = defaultdict(int)
        chosen = []
        for letter in rows:
            if letter.superseded_at:
                skipped["superseded"] += 1
            elif letter.state not in ("new", "investigating"):
                skipped[letter.state] += 1
            elif letter.target is None or not letter.target.replay_url:
                skipped["no_replay_endpoint"] += 1
            else:
                chosen.append(letter)
        bulk = BulkAction.objects.create(
            action="replay",
            requested_by=requested_by,
            requested_at=now,
            selection=selection or {},
            reason=reason,
            touched=len(chosen),
            skipped=dict(skipped),
        )
        blockers = _blockers({letter.business_key for letter in chosen if letter.business_key})
        replays = []
        for letter in chosen:
            rank = rank_of(letter)
            held = _is_held(letter.business_key, rank, blockers)
            replays.append(
                Replay(
                    dead_letter=letter,
                    bulk=bulk,
                    target=letter.target,
                    requested_by=requested_by,
                    requested_at=now,
                    reason=reason,
                    payload=letter.current_payload,
                    payload_version=letter.payload_version,
                    idempotency_key=idempotency_key(letter.id, letter.payload_version),
                    state="held" if held else "queued",
                    rank=rank,
                    business_key=letter.business_key,
                    not_before=now,
                    lease_until=None if held else now + lease,
                )
            )
        Replay.objects.bulk_create(replays, batch_size=1000)
        ids = [letter.id for letter in chosen]
        for start in range(0, len(ids), 1000):
            DeadLetter.objects.filter(
                id__in=ids[start : start + 1000], state__in=("new", "investigating")
            ).update(state="replay_queued", updated_at=now)
        DeadLetterChange.objects.bulk_create(
            [
                DeadLetterChange(
                    dead_letter=letter,
                    at=now,
                    by=requested_by,
                    kind="state",
                    from_state=letter.state,
                    to_state="replay_queued",
                    text=reason or f"Bulk replay {bulk.id}",
                )  # fmt: skip
                for letter in chosen
            ],
            batch_size=1000,
        )
        queued = Replay.objects.filter(bulk=bulk, state="queued").order_by("rank", "id")
        pairs = list(queued.values_list("id", "target_id"))
        transaction.on_commit(lambda: enqueue(pairs))
    return bulk


def release_held(business_keys=None, *, now=None):
    """Queue held replays whose earlier steps are no longer dead-lettered; return their ids."""
    now = now or timezone.now()
    held = Replay.objects.filter(state="held")
    if business_keys is not None:
        held = held.filter(business_key__in=[k for k in business_keys if k])
    held = list(held.values_list("id", "business_key", "rank", "target_id"))
    if not held:
        return []
    blockers = _blockers({key for _, key, _, _ in held})
    free = [(i, target) for i, key, rank, target in held if not _is_held(key, rank, blockers)]
    lease = timedelta(seconds=_conf("REPLAY_LEASE_SECONDS"))
    released = []
    for replay_id, target in free:
        if (
            Replay.objects.filter(id=replay_id, state="held").update(
                state="queued", not_before=now, lease_until=now + lease
            )
            == 1
        ):
            released.append((replay_id, target))
    if released:
        transaction.on_commit(lambda: enqueue(released))
    return [i for i, _ in released]


def enqueue(pairs, *, countdown=None):
    """Send (replay id, target id) pairs to the workers, a batch per target system."""
    from integration_hub.tasks import deliver_replays

    by_target = defaultdict(list)
    for replay_id, target_id in pairs:
        by_target[target_id].append(replay_id)
    size = _conf("REPLAY_BATCH_SIZE")
    for ids in by_target.values():
        for start in range(0, len(ids), size):
            deliver_replays.apply_async(
                args=[ids[start : start + size]],
                queue=_conf("REPLAY_QUEUE"),
                countdown=countdown,
            )


def cancel_bulk(bulk, *, by=None, now=None):
    """Cancel what a bulk replay has not sent yet; its dead letters go back to the inbox."""
    now = now or timezone.now()
    with transaction.atomic():
        pending = list(
            Replay.objects.select_for_update()
            .filter(bulk=bulk, state__in=("held", "queued"))
            .values_list("id", "dead_letter_id")
        )
        ids = [i for i, _ in pending]
        letters = [d for _, d in pending]
        for start in range(0, len(ids), 1000):
            Replay.objects.filter(id__in=ids[start : start + 1000]).update(
                state="cancelled", finished_at=now, lease_until=None
            )
        _back_to_inbox(letters, by=by, text=f"Bulk replay {bulk.id} cancelled", now=now)
        BulkAction.objects.filter(pk=bulk.pk).update(cancelled_at=now, cancelled_by=by)
    return len(ids)


def _back_to_inbox(letter_ids, *, by=None, text, now):
    for start in range(0, len(letter_ids), 1000):
        chunk = letter_ids[start : start + 1000]
        DeadLetter.objects.filter(id__in=chunk, state="replay_queued").update(
            state="investigating", updated_at=now
        )
    DeadLetterChange.objects.bulk_create(
        [
            DeadLetterChange(
                dead_letter_id=i,
                at=now,
                by=by,
                kind="state",
                from_state="replay_queued",
                to_state="investigating",
                text=text,
            )  # fmt: skip
            for i in letter_ids
        ],
        batch_size=1000,
    )


def bulk_progress(bulk):
    """How far a bulk replay got: done, failed, remaining (held among them), and the rest."""
    counts = dict(
        Replay.objects.filter(bulk=bulk).values_list("state").annotate(n=Count("id")).order_by()
    )
    remaining = sum(counts.get(s, 0) for s in ACTIVE_REPLAY_STATES)
    return {
        "id": str(bulk.id),
        "action": bulk.action,
        "total": bulk.touched,
        "done": counts.get("succeeded", 0) if bulk.action == "replay" else bulk.touched,
        "failed": counts.get("failed", 0),
        "held": counts.get("held", 0),
        "remaining": remaining,
        "cancelled": counts.get("cancelled", 0),
        "superseded": counts.get("superseded", 0),
        "skipped": bulk.skipped,
        "finished": remaining == 0,
        "cancelled_at": bulk.cancelled_at.isoformat() if bulk.cancelled_at else None,
    }


# --- delivering ----------------------------------------------------------------------------


def acquire_slot(system_id, token, *, now=None):
    """Take one of the system's delivery slots (conditional UPDATE); return it or None."""
    now = now or timezone.now()
    limit = _conf("REPLAY_CONCURRENCY_PER_SYSTEM")
    ReplaySlot.objects.bulk_create(
        [ReplaySlot(system_id=system_id, number=n) for n in range(limit)],
        ignore_conflicts=True,
    )
    lease = now + timedelta(seconds=_conf("REPLAY_LEASE_SECONDS"))
    for number in random.sample(range(limit), limit):
        free = ReplaySlot.objects.filter(system_id=system_id, number=number).filter(
            Q(holder="") | Q(lease_until__isnull=True) | Q(lease_until__lt=now)
        )
        if free.update(holder=token, lease_until=lease) == 1:
            return ReplaySlot.objects.get(system_id=system_id, number=number)
    return None


def release_slot(slot, token):
    ReplaySlot.objects.filter(pk=slot.pk, holder=token).update(holder="", lease_until=None)


def claim(replay_ids, *, token, now=None):
    """Claim queued, due replays atomically (queued → sending, with a lease); return them."""
    now = now or timezone.now()
    Replay.objects.filter(id__in=replay_ids, state="queued", not_before__lte=now).update(
        state="sending",
        claim_token=token,
        lease_until=now + timedelta(seconds=_conf("REPLAY_LEASE_SECONDS")),
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
        _conf("REPLAY_BACKOFF_MAX_SECONDS"), _conf("REPLAY_BACKOFF_SECONDS") * 2 ** (attempt - 1)
    )
    delay = random.uniform(delay / 2, delay)
    if retry_after is not None:
        delay = max(delay, min(retry_after, _conf("REPLAY_RETRY_AFTER_MAX_SECONDS")))
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
    """POST one claimed replay to its target; classify the answer. No database writes."""
    now = now or timezone.now()
    system = replay.target
    result = Delivery(replay=replay, started_at=now, url=system.replay_url)
    if not system.replay_url:
        result.error = f"{system.code} has no replay endpoint any more."
        return result
    headers = request_headers(
        system=system, key=replay.idempotency_key, correlation_id=replay.dead_letter.correlation_id
    )
    started = time.monotonic()
    retry_after = None
    try:
        status, response_headers, body = http_post(
            system.replay_url,
            encode(replay.payload),
            headers,
            timeout=_conf("REPLAY_TIMEOUT_SECONDS"),
        )
    except (OSError, http.client.HTTPException) as exc:
        status = None
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
        if replay.attempt_count < _conf("REPLAY_MAX_ATTEMPTS"):
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
    rate = _conf("REPLAY_RATE_PER_SYSTEM")
    interval = _conf("REPLAY_CONCURRENCY_PER_SYSTEM") / rate if rate else 0
    lease = timedelta(seconds=_conf("REPLAY_LEASE_SECONDS"))
    renew_at = timezone.now() + lease / 2
    results = []
    for replay in claimed:
        letter = replay.dead_letter
        if replay.bulk_id and is_superseded(letter, letter.transaction, letter.flow.milestones):
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


def record(results, *, token, now=None):
    """Store the outcomes of a claimed batch: attempts, replay rows, dead letters, trace events."""
    from tracing.ingest import ingest_events

    now = now or timezone.now()
    if not results:
        return
    with transaction.atomic():
        mine = set(
            Replay.objects.select_for_update()
            .filter(id__in=[r.replay.id for r in results], claim_token=token, state="sending")
            .values_list("id", flat=True)
        )
        ReplayAttempt.objects.bulk_create(
            [
                ReplayAttempt(
                    replay=r.replay,
                    number=r.replay.attempt_count,
                    started_at=r.started_at,
                    duration_ms=r.duration_ms,
                    payload_version=r.replay.payload_version,
                    url=r.url[:500],
                    status_code=r.status_code,
                    response_excerpt=r.response,
                    error=r.error,
                    outcome=r.outcome if r.outcome != "superseded" else "failed",
                )  # fmt: skip
                for r in results
                if r.outcome != "superseded"
            ]
        )
        results = [r for r in results if r.replay.id in mine]
        retries, changes, events = [], [], []
        closed = defaultdict(list)
        for r in results:
            replay = r.replay
            replay.status_code, replay.response_excerpt, replay.error = (
                r.status_code, r.response, r.error,
            )  # fmt: skip
            replay.claim_token = ""
            if r.outcome == "retry":
                replay.state = "queued"
                replay.not_before = now + timedelta(seconds=r.delay)
                replay.lease_until = replay.not_before + timedelta(
                    seconds=_conf("REPLAY_LEASE_SECONDS")
                )
                retries.append((replay.id, replay.target_id, r.delay))
                continue
            replay.state = r.outcome
            replay.finished_at, replay.lease_until = now, None
            closed[r.outcome].append(replay.dead_letter_id)
            changes.append(_change_for(r, now))
            if r.outcome in ("succeeded", "failed"):
                events.append(replay_event(r, now))
        _save_outcomes([r.replay for r in results])
        DeadLetter.objects.filter(id__in=closed["succeeded"], state="replay_queued").update(
            state="replayed", closed_at=now, updated_at=now
        )
        back = closed["failed"] + closed["superseded"]
        DeadLetter.objects.filter(id__in=back, state="replay_queued").update(
            state="investigating", updated_at=now
        )
        DeadLetter.objects.filter(id__in=closed["superseded"], superseded_at__isnull=True).update(
            superseded_at=now
        )
        DeadLetterChange.objects.bulk_create(changes)
        if events:
            result = ingest_events(events, now=now)
            if result.rejected:
                log.warning("replay trace events rejected: %s", result.rejected)
        if closed["succeeded"]:
            release_held({r.replay.business_key for r in results if r.outcome == "succeeded"})
        transaction.on_commit(lambda: _enqueue_retries(retries))


def _save_outcomes(replays):
    """Write outcome fields with one UPDATE per distinct outcome (a bulk mostly shares one)."""
    same = defaultdict(list)
    for r in replays:
        if r.state == "queued":
            Replay.objects.filter(pk=r.pk).update(
                state="queued", status_code=r.status_code, response_excerpt=r.response_excerpt,
                error=r.error, claim_token="", not_before=r.not_before, lease_until=r.lease_until,
            )  # fmt: skip
        else:
            same[(r.state, r.status_code, r.response_excerpt, r.error, r.finished_at)].append(r.pk)
    for (state, code, response, error, finished), ids in same.items():
        Replay.objects.filter(pk__in=ids).update(
            state=state, status_code=code, response_excerpt=response, error=error,
            claim_token="", lease_until=None, finished_at=finished,
        )  # fmt: skip


def _enqueue_retries(retries):
    for replay_id, target_id, delay in retries:
        enqueue([(replay_id, target_id)], countdown=delay)


def _change_for(r, now):
    texts = {
        "succeeded": ("replayed", f"Replay succeeded (HTTP {r.status_code})."),
        "failed": ("investigating", f"Replay failed: {r.error or r.response[:200]}"),
        "superseded": (
            "investigating",
            "Left out of the bulk replay: its transaction reached this milestone later.",
        ),
    }
    to_state, text = texts[r.outcome]
    return DeadLetterChange(
        dead_letter_id=r.replay.dead_letter_id, at=now, by=None, kind="state",
        from_state="replay_queued", to_state=to_state, text=text[:2000],
    )  # fmt: skip


def _step_for(letter):
    if letter.step:
        return letter.step
    reached = (letter.transaction.milestones if letter.transaction else None) or {}
    for milestone in letter.flow.milestones:
        if milestone not in reached:
            return milestone
    return letter.flow.milestones[-1]


def replay_event(result, now):
    """The trace event that puts a replay's outcome on the transaction's timeline (source HUB)."""
    replay, letter = result.replay, result.replay.dead_letter
    keys = {k: v for k, v in (letter.business_keys or {}).items() if isinstance(v, str)}
    event = {
        "event_id": f"hub-replay-{replay.id}-{replay.attempt_count}",
        "correlation_id": letter.correlation_id,
        "flow": letter.flow.code,
        "step": _step_for(letter),
        "source": "HUB",
        "target": replay.target.code,
        "plant": letter.plant.code,
        "status": "ok" if result.outcome == "succeeded" else "failed",
        "occurred_at": now.isoformat(),
        "business_keys": dict(list(keys.items())[:16]),
        "attributes": {
            "replay_of": letter.external_id,
            "idempotency_key": replay.idempotency_key,
            "payload_version": replay.payload_version,
            "requested_by": replay.requested_by.get_username() if replay.requested_by else "",
            "http_status": result.status_code,
        },
    }
    if result.outcome != "succeeded":
        transient = result.status_code is None or result.status_code >= 500
        event["error"] = {
            "class": "transient" if transient else "unknown",
            "code": f"HTTP_{result.status_code}" if result.status_code else "CONNECTION",
            "message": f"Replay of {letter.external_id} failed: {result.error}"[:4000],
        }
    return event


# --- the safety net ------------------------------------------------------------------------


def sweep(*, now=None):
    """Re-enqueue replays whose lease ran out (worker lost), release held ones, mark superseded.

    Run by beat about every 15 s. Returns {"requeued", "gave_up", "released", "superseded"}.
    """
    now = now or timezone.now()
    lease = timedelta(seconds=_conf("REPLAY_LEASE_SECONDS"))
    max_attempts = _conf("REPLAY_MAX_ATTEMPTS")
    ReplaySlot.objects.filter(lease_until__lt=now).update(holder="", lease_until=None)
    with transaction.atomic():
        lost = Replay.objects.select_for_update().filter(state="sending", lease_until__lt=now)
        gave_up = list(
            lost.filter(attempt_count__gte=max_attempts).values_list("id", "dead_letter_id")
        )
        if gave_up:
            Replay.objects.filter(id__in=[i for i, _ in gave_up]).update(
                state="failed",
                finished_at=now,
                lease_until=None,
                claim_token="",
                error="The worker was lost on the last allowed attempt.",
            )
            _back_to_inbox([d for _, d in gave_up], text="Replay gave up: worker lost.", now=now)
        expired = Replay.objects.filter(state__in=("sending", "queued"), lease_until__lt=now)
        pairs = list(expired.order_by("rank", "id").values_list("id", "target_id"))
        expired.update(state="queued", claim_token="", lease_until=now + lease)
        released = release_held(now=now)
        transaction.on_commit(lambda: enqueue(pairs))
    superseded = mark_superseded(now=now)
    return {
        "requeued": len(pairs),
        "gave_up": len(gave_up),
        "released": len(released),
        "superseded": len(superseded),
    }
