import random

from celery import shared_task
from django.conf import settings

from monitoring.replay import delivery, sweep


@shared_task(name="monitoring.deliver_replays", ignore_result=True)
def deliver_replays(replay_ids):
    """Claim and send a batch of replays; ids whose target is at its limit come back shortly."""
    summary = delivery.deliver_batch(replay_ids)
    if summary["busy"]:
        deliver_replays.apply_async(
            args=[summary["busy"]],
            queue=settings.REPLAY_QUEUE,
            countdown=random.uniform(0.2, 1.0),
        )
    return None


@shared_task(name="monitoring.sweep_replays", ignore_result=True)
def sweep_replays():
    """Re-enqueue replays whose lease ran out, release held ones, mark superseded dead letters."""
    sweep.sweep()
