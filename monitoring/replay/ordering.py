"""Business order: a later step of an order waits while an earlier step is dead-lettered."""

from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from monitoring.models import Replay
from monitoring.replay.queue import enqueue
from tracing.models import DeadLetter


def rank_of(letter):
    """Where a step falls in a business journey: flow position, then milestone."""
    milestones = letter.flow.milestones
    index = milestones.index(letter.step) if letter.step in milestones else 0
    return letter.flow.position * 100 + index


def blockers_of(business_keys):
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


def is_held(business_key, rank, blockers):
    return bool(business_key) and any(r < rank for r in blockers.get(business_key, ()))


def release_held(business_keys=None, *, now=None):
    """Queue held replays whose earlier steps are no longer dead-lettered; return their ids."""
    now = now or timezone.now()
    held = Replay.objects.filter(state="held")
    if business_keys is not None:
        held = held.filter(business_key__in=[k for k in business_keys if k])
    held = list(held.values_list("id", "business_key", "rank", "target_id"))
    if not held:
        return []
    blockers = blockers_of({key for _, key, _, _ in held})
    free = [(i, target) for i, key, rank, target in held if not is_held(key, rank, blockers)]
    lease = timedelta(seconds=settings.REPLAY_LEASE_SECONDS)
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
