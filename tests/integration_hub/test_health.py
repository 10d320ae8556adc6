"""/healthz says the process is up; /readyz checks the database and the broker."""

import json

import pytest

from tests.integration_hub.conftest import run_django

READYZ = (
    "import django, json; django.setup();"
    "from django.test import Client; r = Client().get('/readyz');"
    "print(r.status_code); print(json.dumps({**r.json(), 'retry_after': r.get('Retry-After')}))"
)


def test_healthz_answers_without_touching_anything(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_database_and_broker_ok(client):
    response = client.get("/readyz")
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok"},
        "worker_last_seen": None,
    }
    assert response.status_code == 200


@pytest.mark.django_db
def test_readyz_is_503_naming_the_broker_when_it_is_unreachable(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "down"
    assert body["checks"] == {"database": "ok", "broker": "down"}
    assert "broker" in body["errors"] and body["errors"]["broker"]


@pytest.mark.parametrize(
    "database_url",
    ["postgres://postgres@127.0.0.1:1/nowhere", "sqlite:////nonexistent-dir/for/sure/hub.sqlite3"],
)
def test_readyz_is_503_naming_the_database_when_it_is_unreachable(database_url):
    result = run_django({"DATABASE_URL": database_url, "CELERY_BROKER_URL": "memory://"}, READYZ)
    status, body = result.stdout.strip().split("\n", 1)
    body = json.loads(body)
    assert status == "503", result.stderr
    assert body["checks"]["database"] == "down"
    assert body["retry_after"] == "5"  # the header, as every door sends it
    assert body["checks"]["broker"] == "ok"
    assert body["errors"]["database"]
