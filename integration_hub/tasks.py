import socket

from celery import shared_task
from django.utils import timezone

from integration_hub.models import WorkerHeartbeat


@shared_task(name="integration_hub.heartbeat", ignore_result=True)
def heartbeat(name="worker"):
    """Record that a worker consumed a task; beat sends it so /readyz can show worker age."""
    WorkerHeartbeat.objects.update_or_create(
        name=name, defaults={"hostname": socket.gethostname(), "at": timezone.now()}
    )
