"""With the database gone or saturated every door answers 503 with Retry-After, within the
connect timeout: never a 2xx without the data stored, never a 500, never a hang. Each check
starts Django in a fresh process whose database really is unreachable."""

import json
import socket
import threading
import uuid

import pytest
from django.db import DatabaseError, connection

from integration_hub.unavailable import is_unavailable
from tests.integration_hub.conftest import run_django

WALK = "import runpy; runpy.run_path('tests/integration_hub/unavailable_walk.py')"
POST_EVENTS = (
    "import django, json, time; django.setup();"
    "from django.test import Client; started = time.monotonic();"
    "r = Client().post('/api/v1/events', json.dumps({'event_id': 'e-1'}),"
    " content_type='application/json', HTTP_AUTHORIZATION='Bearer ihk_' + 'k' * 43);"
    "print(json.dumps({'status': r.status_code, 'retry_after': r.get('Retry-After'),"
    " 'seconds': time.monotonic() - started, 'body': r.json()}))"
)
# Calls that never need the database: the liveness probe, and methods a view refuses outright.
WITHOUT_DATABASE = {
    200: {"/healthz"},
    401: {"/api/v1/events", "/v1/traces"},  # no reporter key: refused before any lookup
    404: {"/metrics"},  # METRICS_TOKEN unset: the path does not exist
    405: {"/api/v1/events", "/v1/traces", "/accounts/login/", "/accounts/logout/"},
}


def walk(database_url):
    result = run_django(
        {"DATABASE_URL": database_url, "CELERY_BROKER_URL": "memory://", "DB_CONNECT_TIMEOUT": "2"},
        WALK,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize(
    "database_url",
    ["postgres://postgres@127.0.0.1:1/nowhere", "sqlite:////nonexistent-dir/for/sure/hub.sqlite3"],
)
def test_every_url_and_method_answers_503_with_retry_after_when_the_database_is_gone(
    database_url,
):
    calls = walk(database_url)
    by_call = {c["call"]: c for c in calls}
    assert by_call["POST /api/v1/events reporter"]["status"] == 503
    assert by_call["POST /api/v1/dead-letters reporter"]["status"] == 503
    assert by_call["GET /api/v1/transactions api"]["status"] == 503
    assert by_call["PUT /api/v1/plants/P100/ api"]["status"] == 503
    assert by_call["GET /plants/P100/ browser"]["status"] == 503
    assert by_call["POST /admin/integration_hub/apikey/add/ browser"]["status"] == 503
    unavailable = [c for c in calls if c["status"] == 503]
    assert len(unavailable) > 500
    assert {c["retry_after"] for c in unavailable} == {"5"}
    others = {(c["status"], c["call"].split()[1]) for c in calls if c["status"] != 503}
    # The only other answers: calls that never touch the database (liveness, a reporters' door
    # without a reporter key, methods refused before any lookup, /metrics while it is off).
    assert all(path in WITHOUT_DATABASE.get(status, ()) for status, path in others), others
    assert max(c["seconds"] for c in calls) < 5  # no call waits past the 2 s connect timeout


def test_a_database_that_accepts_but_never_answers_is_a_503_within_the_connect_timeout():
    """A server that takes the TCP connection and then says nothing (a hung or overloaded
    host): the sender hears 503 once DB_CONNECT_TIMEOUT has passed, not never."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held = []
    threading.Thread(target=lambda: held.append(listener.accept()), daemon=True).start()
    try:
        port = listener.getsockname()[1]
        result = run_django(
            {
                "DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/hub",
                "DB_CONNECT_TIMEOUT": "2",
                "DB_RETRY_AFTER_SECONDS": "7",
            },
            POST_EVENTS,
        )
    finally:
        listener.close()
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == 503, result.stderr[-2000:]
    assert answer["retry_after"] == "7"
    assert "nothing was stored" in answer["body"]["error"]
    assert 1.5 < answer["seconds"] < 6
    assert held, "the database was never even contacted"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # another process connects
def test_a_saturated_postgres_is_a_503_not_a_500():
    """The server refuses the connection (too many connections for the role: SQLSTATE 53300)."""
    role = f"hub_saturated_{uuid.uuid4().hex[:8]}"
    settings_dict = connection.settings_dict
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0")
    try:
        host, port = settings_dict["HOST"] or "127.0.0.1", settings_dict["PORT"] or 5432
        result = run_django(
            {"DATABASE_URL": f"postgres://{role}@{host}:{port}/{settings_dict['NAME']}"},
            POST_EVENTS,
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP ROLE {role}")
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == 503, result.stderr[-2000:]
    assert answer["retry_after"] == "5"
    assert "too many connections" in result.stderr


@pytest.mark.django_db
def test_a_programming_error_is_not_mistaken_for_an_unavailable_database():
    with pytest.raises(DatabaseError) as caught, connection.cursor() as cursor:
        cursor.execute("SELECT no_such_column FROM integration_hub_plant")
    assert not is_unavailable(caught.value)
