"""Hands replay ids to the workers in batches per target system."""

from collections import defaultdict

from django.conf import settings

from integration_hub.celery import app


def enqueue(pairs, *, countdown=None):
    """Send (replay id, target id) pairs to the workers, a batch per target system."""
    by_target = defaultdict(list)
    for replay_id, target_id in pairs:
        by_target[target_id].append(replay_id)
    size = settings.REPLAY_BATCH_SIZE
    for ids in by_target.values():
        for start in range(0, len(ids), size):
            app.send_task(
                "monitoring.deliver_replays",
                args=[ids[start : start + size]],
                queue=settings.REPLAY_QUEUE,
                countdown=countdown,
            )
