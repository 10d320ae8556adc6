"""A reporter key's rate limit: events a second with a burst, counted in events (a batch of
1,000 costs 1,000), shared by every web process (Redis when configured, else the database);
past it 429 with Retry-After and a body naming the limit, and nothing stored."""

import json
import threading
import time
import uuid

import pytest
import redis
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from integration_hub.models import ApiKey, RateBucket
from integration_hub.rate_limits import RateLimited, spend, spend_for_key
from tests.events import event
from tests.integration_hub.conftest import run_django
from tracing.models import DeadLetter, TraceEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["database", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request, settings):
    """Each test runs against both shared stores."""
    if request.param == "database":
        settings.REDIS_URL = ""
    return request.param


def reporter(**limit):
    key, raw = ApiKey.issue("limited reporter", **limit)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return key, client


def send(client, count, prefix="e"):
    batch = [event(event_id=f"{prefix}-{uuid.uuid4().hex}-{i}") for i in range(count)]
    return client.post("/api/v1/events", {"events": batch}, format="json")


def test_a_key_without_a_limit_is_not_limited(backend, p100):
    _, client = reporter()
    assert [send(client, 200).status_code for _ in range(3)] == [202, 202, 202]
    assert TraceEvent.objects.count() == 600
    assert not RateBucket.objects.exists()


def test_a_batch_costs_its_events_and_past_the_limit_nothing_is_stored(backend, p100):
    _, client = reporter(events_per_second=1, burst=100)  # slow refill: no timing luck needed
    assert send(client, 60).status_code == 202
    limited = send(client, 60)
    assert limited.status_code == 429
    assert 10 <= int(limited["Retry-After"]) <= 20  # 20 events short at 1 a second: 20 s
    body = limited.json()
    assert body["limit"] == {"events_per_second": 1, "burst": 100}
    assert "1 events/s" in body["error"] and "burst of 100" in body["error"]
    assert TraceEvent.objects.count() == 60
    assert send(client, 40).status_code == 202  # what is left of the burst still fits
    assert TraceEvent.objects.count() == 100


def test_a_batch_larger_than_the_burst_is_413_naming_it(backend, p100):
    _, client = reporter(events_per_second=5)  # burst: one second's worth
    response = send(client, 6)
    assert response.status_code == 413
    assert response.json()["limit"] == {"events_per_second": 5, "burst": 5}
    assert TraceEvent.objects.count() == 0


def test_the_bucket_fills_again_at_the_rate(backend):
    name, now = f"test:{uuid.uuid4().hex}", time.time()
    spend(name, 100, rate=10, burst=100, now=now)
    with pytest.raises(RateLimited) as caught:
        spend(name, 10, rate=10, burst=100, now=now + 0.5)
    assert caught.value.retry_after == pytest.approx(0.5, abs=0.01)
    spend(name, 10, rate=10, burst=100, now=now + 1.0)  # ten more a second later
    spend(name, 100, rate=10, burst=100, now=now + 12)  # full again after ten seconds


def full_at(key):
    """When the key's bucket is full again (seconds since the epoch), from the shared store."""
    name = f"apikey:{key.pk}:{key.prefix}"
    if settings.REDIS_URL:
        return float(redis.Redis.from_url(settings.REDIS_URL).get(f"hub:rate:{name}"))
    return RateBucket.objects.get(name=name).full_at


def test_reported_dead_letters_count_one_event_each(backend, p100):
    key, client = reporter(events_per_second=1, burst=100)
    report = {
        "id": "DL-1", "correlation_id": "PO-1", "flow": "order_release", "source": "ERP",
        "target": "MES", "plant": "P100", "payload": {"a": 1},
        "error": {"class": "transient", "code": "E", "message": "down"},
    }  # fmt: skip
    assert client.post("/api/v1/dead-letters", report, format="json").status_code == 201
    first = full_at(key)
    assert (
        client.post("/api/v1/dead-letters", {**report, "id": "DL-2"}, format="json").status_code
        == 201
    )
    assert full_at(key) - first == pytest.approx(1.0)  # one report: one second at 1 a second
    spend_for_key(key, 100, now=time.time() + 5)  # the rest of the burst, spent "5 s ahead"
    limited = client.post("/api/v1/dead-letters", {**report, "id": "DL-3"}, format="json")
    assert limited.status_code == 429 and int(limited["Retry-After"]) >= 1
    assert limited.json()["limit"] == {"events_per_second": 1, "burst": 100}
    assert sorted(DeadLetter.objects.values_list("external_id", flat=True)) == ["DL-1", "DL-2"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_limit_holds_across_threads_with_their_own_connections(settings):
    """Two web workers share one bucket: what one spends, the other cannot."""
    settings.REDIS_URL = ""
    name = f"test:{uuid.uuid4().hex}"
    done = []

    def other_worker():
        spend(name, 80, rate=1, burst=100)
        done.append(True)
        connection.close()

    worker = threading.Thread(target=other_worker)
    worker.start()
    worker.join()
    assert done
    with pytest.raises(RateLimited):
        spend(name, 30, rate=1, burst=100)  # 10 short: fits only 10 s later


SPEND_80 = (
    "import django; django.setup(); from integration_hub.rate_limits import spend;"
    "spend({name!r}, 80, rate=1, burst=100); print('spent')"
)


@pytest.mark.parametrize(
    "store", [pytest.param("database", marks=pytest.mark.postgres), "redis-store"]
)
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_limit_holds_across_processes(store, settings):
    """What another process (another gunicorn worker) spent counts here too."""
    if store == "redis-store" and not settings.REDIS_URL:
        pytest.skip("needs Redis: run with REDIS_URL=redis://127.0.0.1:6379/0")
    name = f"test:{uuid.uuid4().hex}"
    env = {"REDIS_URL": settings.REDIS_URL if store == "redis-store" else ""}
    if store == "database":
        settings.REDIS_URL = ""
        db = connection.settings_dict
        env["DATABASE_URL"] = (
            f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )
    result = run_django(env, SPEND_80.format(name=name))
    assert result.stdout.strip() == "spent", result.stderr[-2000:]
    with pytest.raises(RateLimited):
        spend(name, 30, rate=1, burst=100)  # 10 short: fits only 10 s later
    spend(name, 20, rate=1, burst=100)


def test_a_redis_that_does_not_answer_falls_back_to_the_database(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    name = f"test:{uuid.uuid4().hex}"
    spend(name, 100, rate=1, burst=100)
    assert RateBucket.objects.filter(name=name).exists()
    with pytest.raises(RateLimited):
        spend(name, 10, rate=1, burst=100)


# --- setting the limit ------------------------------------------------------------------------


def test_admins_set_and_clear_the_limit_by_api(admin_api):
    created = admin_api.post(
        "/api/v1/api-keys",
        {"name": "MES adapter", "events_per_second": 500, "burst": 2000},
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert (created.json()["events_per_second"], created.json()["burst"]) == (500, 2000)
    key = ApiKey.objects.get(pk=created.json()["id"])
    assert (key.events_per_second, key.burst) == (500, 2000)
    changed = admin_api.patch(f"/api/v1/api-keys/{key.pk}", {"burst": None}, format="json")
    assert changed.status_code == 200 and changed.json()["burst"] is None
    key.refresh_from_db()
    assert (key.events_per_second, key.burst, key.rate_limit) == (500, None, (500, 500))
    admin_api.patch(f"/api/v1/api-keys/{key.pk}", {"events_per_second": None}, format="json")
    key.refresh_from_db()
    assert key.rate_limit is None
    assert admin_api.get(f"/api/v1/api-keys/{key.pk}").json()["events_per_second"] is None


@pytest.mark.parametrize(
    "body, field",
    [
        ({"events_per_second": 0}, "events_per_second"),
        ({"events_per_second": "fast"}, "events_per_second"),
        ({"events_per_second": 1.5}, "events_per_second"),
        ({"events_per_second": True}, "events_per_second"),
        ({"burst": -1}, "burst"),
        ({"burst": 10}, "burst"),  # a burst without a rate
        ({"name": "renamed"}, "name"),
    ],
)
def test_a_bad_limit_is_a_400_naming_the_field(admin_api, body, field):
    key, _ = ApiKey.issue("k")
    response = admin_api.patch(f"/api/v1/api-keys/{key.pk}", body, format="json")
    assert response.status_code == 400 and field in response.json()
    key.refresh_from_db()
    assert (key.name, key.events_per_second, key.burst) == ("k", None, None)
    created = admin_api.post("/api/v1/api-keys", {"name": "new", **body}, format="json")
    if field != "name":
        assert created.status_code == 400 and field in created.json()
    assert not ApiKey.objects.filter(name="new").exists() or field == "name"


def test_admins_set_the_limit_in_the_admin(client, alice):
    key, _ = ApiKey.issue("WMS adapter")
    client.force_login(alice)
    response = client.post(
        f"/admin/integration_hub/apikey/{key.pk}/change/",
        {"name": "WMS adapter", "events_per_second": "200", "burst": "1000"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    key.refresh_from_db()
    assert key.rate_limit == (200, 1000)
    refused = client.post(
        f"/admin/integration_hub/apikey/{key.pk}/change/",
        {"name": "WMS adapter", "events_per_second": "", "burst": "10"},
    )
    assert (
        refused.status_code == 200 and "needs an events-per-second rate" in refused.content.decode()
    )
    key.refresh_from_db()
    assert key.rate_limit == (200, 1000)


def test_the_limit_is_shown_in_the_key_list(admin_api):
    ApiKey.issue("fast", events_per_second=50)
    listed = admin_api.get("/api/v1/api-keys").json()["results"]
    assert json.loads(json.dumps(listed))[0]["events_per_second"] == 50
