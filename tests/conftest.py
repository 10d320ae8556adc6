"""Shared fixtures: named people, plants, API clients, and skips for services not configured."""

import os

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from integration_hub.models import ApiKey, Plant, PlantMembership, System
from tests.receivers.alerts import SMTPReceiver
from tests.receivers.replay import Receiver


def uses_postgres():
    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def pytest_collection_modifyitems(config, items):
    skips = {
        "postgres": (
            not uses_postgres(),
            "needs PostgreSQL: run with DATABASE_URL=postgres://postgres@127.0.0.1:5432/hub",
        ),
        "redis": (
            not settings.REDIS_URL,
            "needs Redis: run with REDIS_URL=redis://127.0.0.1:6379/0",
        ),
        "browser": (
            not os.path.exists(os.environ.get("CHROMIUM", "/usr/bin/chromium")),
            "needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
        ),
    }
    for item in items:
        for mark, (skip, reason) in skips.items():
            if skip and mark in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def no_api_throttling(settings):
    """Tests make many API calls a minute; the throttling test turns it back on."""
    settings.API_RATE_PER_MINUTE = 0


@pytest.fixture
def p100(db):
    return Plant.objects.get_or_create(
        code="P100", defaults={"name": "Plant 100 Stuttgart", "timezone": "Europe/Berlin"}
    )[0]


@pytest.fixture
def p200(db):
    return Plant.objects.get_or_create(
        code="P200", defaults={"name": "Plant 200 Leipzig", "timezone": "Europe/Berlin"}
    )[0]


@pytest.fixture
def alice(django_user_model):
    """Alice, an integration admin."""
    return django_user_model.objects.create_user(
        "alice", password="alice-pw", is_staff=True, is_superuser=True
    )


def person(django_user_model, name, role, plants):
    user = django_user_model.objects.create_user(name, password=f"{name}-pw")
    user.groups.add(Group.objects.get(name=role))
    for plant in plants:
        PlantMembership.objects.create(user=user, plant=plant)
    return user


@pytest.fixture
def bob(django_user_model, p100, p200):
    """Bob, the supervisor of plants P100 and P200; no admin rights."""
    return person(django_user_model, "bob", "supervisor", [p100, p200])


@pytest.fixture
def carol(django_user_model, p200):
    """Carol, the supervisor of plant P200 only."""
    return person(django_user_model, "carol", "supervisor", [p200])


@pytest.fixture
def dave(django_user_model, p100):
    """Dave, a support analyst for plant P100: triages and replays."""
    return person(django_user_model, "dave", "analyst", [p100])


def token_client(user):
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def admin_api(alice):
    return token_client(alice)


@pytest.fixture
def supervisor_api(bob):
    return token_client(bob)


@pytest.fixture
def p200_supervisor_api(carol):
    return token_client(carol)


@pytest.fixture
def reporter_key(db):
    """A raw API key allowed to report for any system and plant."""
    _, raw = ApiKey.issue("test reporter")
    return raw


@pytest.fixture
def smtp(settings):
    """A local SMTP server that the mailers send to; `.messages` holds what arrived."""
    receiver = SMTPReceiver().start()
    settings.MAILERS = {"default": receiver.mailer()}
    yield receiver
    receiver.stop()


@pytest.fixture
def mes_target(p100):
    """MES's replay endpoint: a local idempotent receiver (`.requests`, `.keys()`)."""
    with Receiver() as receiver:
        System.objects.filter(code="MES").update(replay_url=receiver.url)
        yield receiver
