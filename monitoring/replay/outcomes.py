"""Recording outcomes: replay rows, the audit trail, and a hub trace event on the transaction."""

import logging
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from monitoring.models import Replay, ReplayAttempt
from monitoring.replay.ordering import release_held
from monitoring.replay.queue import enqueue
from tracing.ingest.pipeline import ingest_events
from tracing.models import DeadLetter, DeadLetterChange

log = logging.getLogger(__name__)


def record(results, *, token, now=None):
    """Store the outcomes of a claimed batch: attempts, replay rows, dead letters, trace events."""
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
                    seconds=settings.REPLAY_LEASE_SECONDS
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
