import random
import socket

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from integration_hub.models import WorkerHeartbeat


@shared_task(name="integration_hub.heartbeat", ignore_result=True)
def heartbeat(name="worker"):
    """Record that a worker consumed a task; beat sends it so /readyz can show worker age."""
    WorkerHeartbeat.objects.update_or_create(
        name=name, defaults={"hostname": socket.gethostname(), "at": timezone.now()}
    )


@shared_task(name="integration_hub.deliver_replays", ignore_result=True)
def deliver_replays(replay_ids):
    """Claim and send a batch of replays; ids whose target is at its limit come back shortly."""
    from integration_hub import replay

    summary = replay.deliver_batch(replay_ids)
    if summary["busy"]:
        deliver_replays.apply_async(
            args=[summary["busy"]],
            queue=settings.REPLAY_QUEUE,
            countdown=random.uniform(0.2, 1.0),
        )
    return None


@shared_task(name="integration_hub.sweep_replays", ignore_result=True)
def sweep_replays():
    """Re-enqueue replays whose lease ran out, release held ones, mark superseded dead letters."""
    from integration_hub import replay

    replay.sweep()
