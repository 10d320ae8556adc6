"""DATABASE_READ_URL: dashboards and read APIs query the replica, everything else (writes,
sign-in, tokens, API keys) the primary. The replica here is the same PostgreSQL database under
a second alias, in a fresh process."""

import json

import pytest
from rest_framework.authtoken.models import Token

from integration_hub.models import ApiKey
from integration_hub.replica import ReadReplicaRouter
from tests.events import event
from tests.integration_hub.conftest import run_django
from tests.monitoring.conftest import database_url
from tracing.ingest.pipeline import ingest_events
from tracing.models import Transaction

PROBE = "import runpy; runpy.run_path('tests/integration_hub/replica_probe.py')"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # another process reads
def test_dashboards_and_read_apis_query_the_replica_writes_the_primary(alice, p100):
    ingest_events([event(correlation_id="PO-1")])
    _, key = ApiKey.issue("probe")
    url = database_url()
    result = run_django(
        {
            "DATABASE_URL": url,
            "DATABASE_READ_URL": url,
            "PROBE_TOKEN": Token.objects.create(user=alice).key,
            "PROBE_KEY": key,
            "CELERY_BROKER_URL": "memory://",
        },
        PROBE,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    calls = {c["call"]: c for c in map(json.loads, result.stdout.splitlines())}
    for read in ("GET /api/v1/transactions", "GET /api/v1/slos", "GET /plants/P100/"):
        assert calls[read]["status"] == 200, calls[read]
        assert any("tracing_transaction" in q or "monitoring_" in q for q in calls[read]["replica"])
        # who is asking comes from the primary (a new token works at once)
        assert not any("authtoken" in q or "django_session" in q for q in calls[read]["replica"])
    for write in ("POST /api/v1/events", "PATCH /api/v1/plants/P100"):
        assert calls[write]["status"] in (200, 202), calls[write]
        assert calls[write]["replica"] == [], calls[write]
    assert Transaction.objects.filter(correlation_id="PO-PROBE").exists()
    p100.refresh_from_db()
    assert p100.name == "Renamed"


def test_without_a_replica_every_query_goes_to_the_primary(settings):
    assert "replica" not in settings.DATABASES
    assert ReadReplicaRouter().db_for_read(Transaction) is None
