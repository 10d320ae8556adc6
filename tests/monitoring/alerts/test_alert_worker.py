"""A delivery survives a worker killed mid-send: real Celery workers on Redis, real PostgreSQL.

The first worker claims the delivery and is SIGKILLed while the receiver holds its request open.
Redis would hand the unacknowledged message back only after its visibility timeout (an hour), so
the database lease is what recovers it: beat's requeue, a lease later, hands it to a new worker.
The receiver sees the notice twice with the same webhook-id (the first one never got an answer),
so it can drop the repeat; the hub records one delivery, sent, on its second attempt.
"""

import json
import signal
import uuid
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from monitoring.alerts.channels.webhook import new_secret
from monitoring.alerts.delivery import requeue_deliveries
from monitoring.alerts.lifecycle import evaluate_alerts
from monitoring.models import AlertChannel, AlertRule, Delivery
from tests.events import event
from tests.monitoring.conftest import start_worker, stop_worker, wait_for
from tests.receivers.alerts import WebhookReceiver
from tracing.ingest.pipeline import ingest_events


def alert_worker(queue, tmp_path):
    env = {"ALERT_DELIVERY_QUEUE": queue}
    return start_worker(queue, tmp_path, env=env, options=["--pool=solo"])


def forget_queue(queue):
    """Drop this test's queue and its unacknowledged message from the shared Redis."""
    import redis

    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    client.delete(queue)
    for tag, raw in client.hscan_iter("unacked"):
        try:
            routing_key = json.loads(raw)[2]
        except (ValueError, IndexError):
            continue
        if routing_key == queue:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_delivery_survives_a_worker_killed_mid_send(settings, tmp_path, p100):
    queue = f"test-alerts-{uuid.uuid4().hex[:10]}"  # no other engineer's worker consumes it
    settings.ALERT_DELIVERY_QUEUE = queue
    hook = WebhookReceiver(secret=new_secret(), stall_first=True).start()
    first = second = None
    try:
        AlertRule.objects.create(
            name="Order releases stuck", kind="stuck", threshold_count=0, plant=p100
        )
        AlertChannel.objects.create(
            name="ops", kind="webhook", url=hook.url, secret=hook.secret, timeout_seconds=30
        )
        now = timezone.now()
        released = now - timedelta(hours=2)
        ingest_events([event("released", correlation_id="PO-K", at=released)], now=now)

        first = alert_worker(queue, tmp_path)
        evaluate_alerts()  # commits, then enqueues the delivery on the test's queue
        assert hook.first_arrived.wait(60), "the first worker never sent the webhook"
        delivery = Delivery.objects.get()
        assert (delivery.state, delivery.attempts) == ("sending", 1)

        stop_worker(first, signal.SIGKILL)  # mid-request: no answer recorded, message not acked
        hook.release()
        delivery.refresh_from_db()
        assert delivery.state == "sending"

        lease = timedelta(seconds=settings.ALERT_DELIVERY_LEASE_SECONDS + 1)
        assert requeue_deliveries(timezone.now()) == []  # lease still running: hands off
        assert requeue_deliveries(timezone.now() + lease) == [delivery.id]

        second = alert_worker(queue, tmp_path)
        assert wait_for(lambda: Delivery.objects.get().state == "sent"), (
            Delivery.objects.values().get()
        )
        delivery.refresh_from_db()
        assert delivery.attempts == 2 and delivery.response_status == 200
        assert Delivery.objects.count() == 1
        ids = [r["headers"]["webhook-id"] for r in hook.requests]
        assert ids == [delivery.message_id, delivery.message_id]  # the receiver can dedupe
        assert all(r["verified"] for r in hook.requests)
    finally:
        for proc in (first, second):
            if proc is not None:
                stop_worker(proc)
        hook.stop()
        forget_queue(queue)
