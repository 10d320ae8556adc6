"""The safety net: re-enqueue replays whose lease ran out and release held ones."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from monitoring.models import Replay, ReplaySlot
from monitoring.replay.ordering import release_held
from monitoring.replay.queue import enqueue
from monitoring.replay.requests import back_to_inbox
from tracing.dead_letters.superseded import mark_superseded


def sweep(*, now=None):
    """Re-enqueue replays whose lease ran out (worker lost), release held ones, mark superseded.

    Run by beat about every 15 s. Returns {"requeued", "gave_up", "released", "superseded"}.
    """
    now = now or timezone.now()
    lease = timedelta(seconds=settings.REPLAY_LEASE_SECONDS)
    max_attempts = settings.REPLAY_MAX_ATTEMPTS
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
            back_to_inbox([d for _, d in gave_up], text="Replay gave up: worker lost.", now=now)
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
