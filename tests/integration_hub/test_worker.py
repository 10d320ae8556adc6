"""A real Celery worker consumes tasks from the broker (Redis in CI, the embedded one locally)."""

import time
import uuid

import pytest
from celery.contrib.testing.worker import start_worker

from integration_hub.celery import app
from integration_hub.models import WorkerHeartbeat
from integration_hub.tasks import heartbeat


def run_heartbeat_through_a_worker(queue):
    with start_worker(
        app, pool="solo", queues=[queue], perform_ping_check=False, shutdown_timeout=10
    ):
        heartbeat.apply_async(kwargs={"name": queue}, queue=queue)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if WorkerHeartbeat.objects.filter(name=queue).exists():
                return WorkerHeartbeat.objects.get(name=queue)
            time.sleep(0.1)
    raise AssertionError("the worker did not run the task within 60 s")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_real_worker_executes_a_task_from_the_configured_broker():
    beat = run_heartbeat_through_a_worker(f"test-{uuid.uuid4().hex[:8]}")
    assert beat.hostname


@pytest.mark.redis
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_with_redis_url_set_the_worker_consumes_from_redis(settings):
    assert app.conf.broker_url == settings.REDIS_URL
    with app.connection_for_write() as conn:
        assert conn.transport.driver_type == "redis"
    beat = run_heartbeat_through_a_worker(f"test-{uuid.uuid4().hex[:8]}")
    assert beat.hostname
