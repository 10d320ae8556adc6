"""Shared fixtures: named people, plants, API clients, and skips for services not configured."""

import os

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from integration_hub.models import ApiKey, Plant


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


@pytest.fixture
def p100(db):
    return Plant.objects.create(code="P100", name="Plant 100 Stuttgart", timezone="Europe/Berlin")


@pytest.fixture
def p200(db):
    return Plant.objects.create(code="P200", name="Plant 200 Leipzig", timezone="Europe/Berlin")


@pytest.fixture
def alice(django_user_model):
    """Alice, an integration admin."""
    return django_user_model.objects.create_user(
        "alice", password="alice-pw", is_staff=True, is_superuser=True
    )


@pytest.fixture
def bob(django_user_model):
    """Bob, a plant supervisor with no admin rights."""
    return django_user_model.objects.create_user("bob", password="bob-pw")


def token_client(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def admin_api(alice):
    return token_client(alice)


@pytest.fixture
def supervisor_api(bob):
    return token_client(bob)


@pytest.fixture
def reporter_key(db):
    """A raw API key allowed to report for any system and plant."""
    _, raw = ApiKey.issue("test reporter")
    return raw
