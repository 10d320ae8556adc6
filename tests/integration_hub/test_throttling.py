"""Repeated failed sign-ins lock out the username and the address; API calls per person are
limited per minute, with Retry-After."""

import pytest
from django.core.cache import cache

from integration_hub.models import LoginFailure

pytestmark = pytest.mark.django_db


def sign_in(client, username, password, address="10.0.0.7"):
    return client.post(
        "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address
    )


def test_five_failures_lock_the_username_even_with_the_right_password(client, alice, settings):
    settings.LOGIN_MAX_FAILURES = 5
    for _ in range(5):
        assert sign_in(client, "alice", "wrong").status_code == 200
    locked = sign_in(client, "alice", "alice-pw")
    assert locked.status_code == 429 and int(locked["Retry-After"]) > 0
    assert "Too many failed sign-ins" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    assert sign_in(client, "alice", "alice-pw", address="10.0.0.8").status_code == 429


def test_failures_from_one_address_lock_that_address(client, alice, bob, settings):
    settings.LOGIN_MAX_FAILURES = 3
    for name in ("x", "y", "z"):
        sign_in(client, name, "guess")
    assert sign_in(client, "alice", "alice-pw").status_code == 429
    assert sign_in(client, "alice", "alice-pw", address="10.0.0.9").status_code == 302


def test_the_lock_ends_with_its_window(client, alice, settings):
    settings.LOGIN_MAX_FAILURES = 2
    sign_in(client, "alice", "wrong")
    sign_in(client, "alice", "wrong")
    assert sign_in(client, "alice", "alice-pw").status_code == 429
    LoginFailure.objects.update(at=LoginFailure.objects.first().at.replace(year=2020))
    assert sign_in(client, "alice", "alice-pw").status_code == 302


def test_api_calls_per_person_are_limited_with_retry_after(supervisor_api, settings, p100):
    cache.clear()
    settings.API_RATE_PER_MINUTE = 3
    codes = [supervisor_api.get("/api/v1/slos").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = supervisor_api.get("/api/v1/slos")
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
