"""Asking for replays: one dead letter, a selection in business order, cancel and progress."""

from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from monitoring.models import ACTIVE_REPLAY_STATES, BulkAction, Replay
from monitoring.replay.ordering import blockers_of, is_held, rank_of
from monitoring.replay.preview import (
    UNCHANGED,
    InvalidPayload,
    NotReplayable,
    destination,
    idempotency_key,
    replay_round,
    require_reason_again,
)
from monitoring.replay.queue import enqueue
from monitoring.triage import states
from tracing.dead_letters.superseded import mark_superseded
from tracing.models import DeadLetter, DeadLetterChange


def request_replay(*, dead_letter, requested_by, payload=UNCHANGED, reason="", now=None):
    """Queue one dead letter for replay (as is, or with an edited payload and a reason).

    Asking again while its replay is queued (a double click, a client's retry) returns that
    replay: same key, nothing new. Asking after a replay was sent (it succeeded or failed) is a
    deliberate re-replay: it needs a reason and goes as the next round with a new key.
    """
    now = now or timezone.now()
    reason = (reason or "").strip()
    with transaction.atomic():
        letter = (
            DeadLetter.objects.select_for_update(of=("self",))
            .select_related("target", "flow")
            .get(pk=dead_letter.pk)
        )
        edited = payload is not UNCHANGED and payload != letter.current_payload
        if letter.state == "replay_queued" and not edited:
            queued = letter.replays.filter(state__in=ACTIVE_REPLAY_STATES).first()
            if queued is not None:
                return queued
        if not letter.is_replayable:
            raise NotReplayable(
                f"It is {letter.get_state_display().lower()}; only new, investigating or "
                "replayed dead letters can be replayed.",
                "state",
            )
        system = destination(letter)
        if edited:
            if not reason:
                raise InvalidPayload("Say why the payload was edited.", "reason")
            states.edit_payload(letter, payload, reason=reason, by=requested_by, now=now)
        round_ = replay_round(letter, letter.payload_version)
        require_reason_again(round_, reason)
        replay = Replay.objects.create(
            dead_letter=letter,
            target=system,
            requested_by=requested_by,
            requested_at=now,
            reason=reason,
            payload=letter.current_payload,
            payload_version=letter.payload_version,
            idempotency_key=idempotency_key(letter.id, letter.payload_version, round_),
            state="queued",
            rank=rank_of(letter),
            business_key=letter.business_key,
            not_before=now,
            lease_until=now + timedelta(seconds=settings.REPLAY_LEASE_SECONDS),
        )
        text = reason or "Replay requested"
        if round_ > 1:
            text = f"Replay again (round {round_}, key {replay.idempotency_key}): {reason}"
        states.move_to(letter, "replay_queued", by=requested_by, text=text, now=now)
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
    lease = timedelta(seconds=settings.REPLAY_LEASE_SECONDS)
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
        blockers = blockers_of({letter.business_key for letter in chosen if letter.business_key})
        replays = []
        for letter in chosen:
            rank = rank_of(letter)
            held = is_held(letter.business_key, rank, blockers)
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


def cancel_bulk(bulk, *, by=None, now=None, dead_letters=None):
    """Cancel what a bulk replay has not sent yet; its dead letters go back to the inbox.

    `dead_letters` (a queryset) limits it to the part a person may act on; None: all of it.
    """
    now = now or timezone.now()
    with transaction.atomic():
        pending = Replay.objects.select_for_update().filter(bulk=bulk, state__in=("held", "queued"))
        if dead_letters is not None:
            pending = pending.filter(dead_letter__in=dead_letters)
        pending = list(pending.values_list("id", "dead_letter_id"))
        ids = [i for i, _ in pending]
        letters = [d for _, d in pending]
        for start in range(0, len(ids), 1000):
            Replay.objects.filter(id__in=ids[start : start + 1000]).update(
                state="cancelled", finished_at=now, lease_until=None
            )
        back_to_inbox(letters, by=by, text=f"Bulk replay {bulk.id} cancelled", now=now)
        if dead_letters is None:
            BulkAction.objects.filter(pk=bulk.pk).update(cancelled_at=now, cancelled_by=by)
    return len(ids)


def back_to_inbox(letter_ids, *, by=None, text, now):
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


def bulk_progress(bulk, *, dead_letters=None):
    """How far a bulk replay got: done, failed, remaining (held among them), and the rest.

    `dead_letters` limits the figures to the part a person may see (None: all of it); what
    was left out of the bulk is only shown to someone who sees the whole of it.
    """
    replays = Replay.objects.filter(bulk=bulk)
    if dead_letters is not None:
        replays = replays.filter(dead_letter__in=dead_letters)
    counts = dict(replays.values_list("state").annotate(n=Count("id")).order_by())
    whole = dead_letters is None or sum(counts.values()) == Replay.objects.filter(bulk=bulk).count()
    remaining = sum(counts.get(s, 0) for s in ACTIVE_REPLAY_STATES)
    total = bulk.touched if whole else sum(counts.values())
    return {
        "id": str(bulk.id),
        "action": bulk.action,
        "total": total,
        "done": counts.get("succeeded", 0) if bulk.action == "replay" else total,
        "failed": counts.get("failed", 0),
        "held": counts.get("held", 0),
        "remaining": remaining,
        "cancelled": counts.get("cancelled", 0),
        "superseded": counts.get("superseded", 0),
        "skipped": bulk.skipped if whole else {},
        "finished": remaining == 0,
        "cancelled_at": bulk.cancelled_at.isoformat() if bulk.cancelled_at else None,
    }
