"""Per-system delivery slots: at most N replays in flight to one target, held under a lease."""

import random
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from monitoring.models import ReplaySlot


def acquire_slot(system_id, token, *, now=None):
    """Take one of the system's delivery slots (conditional UPDATE); return it or None."""
    now = now or timezone.now()
    limit = settings.REPLAY_CONCURRENCY_PER_SYSTEM
    ReplaySlot.objects.bulk_create(
        [ReplaySlot(system_id=system_id, number=n) for n in range(limit)],
        ignore_conflicts=True,
    )
    lease = now + timedelta(seconds=settings.REPLAY_LEASE_SECONDS)
    for number in random.sample(range(limit), limit):
        free = ReplaySlot.objects.filter(system_id=system_id, number=number).filter(
            Q(holder="") | Q(lease_until__isnull=True) | Q(lease_until__lt=now)
        )
        if free.update(holder=token, lease_until=lease) == 1:
            return ReplaySlot.objects.get(system_id=system_id, number=number)
    return None


def release_slot(slot, token):
    ReplaySlot.objects.filter(pk=slot.pk, holder=token).update(holder="", lease_until=None)
