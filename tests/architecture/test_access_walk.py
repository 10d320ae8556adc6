"""Every URL of the project, walked from the urlconf (so a new view is covered the day it is
added), with every method, as two people who must not reach plant P100's data:

- carol, a supervisor of another plant (P200): nothing of P100 in any answer, nothing changed;
- bob, a supervisor of P100 without replay rights: may read P100, may change nothing.

No answer may be a 5xx. P100's data carries marked identifiers; a body that contains one is a
leak. After the walk, P100's data must be exactly as it was.
"""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from integration_hub.models import ApiKey, Downtime, PlantMembership, Shift, System
from monitoring.alerts.lifecycle import evaluate_alerts
from monitoring.models import (
    SLO,
    AgreementRule,
    Alert,
    AlertChannel,
    AlertRule,
    BulkAction,
    OwnerRule,
    ReconciliationException,
    Replay,
)
from monitoring.replay import requests
from tests.conftest import token_client
from tests.events import event, failed
from tracing.ingest.pipeline import ingest_events
from tracing.models import DeadLetter, DeadLetterChange, Transaction

pytestmark = pytest.mark.django_db
SECRETS = ("Secret key P100", "PO-SECRET-100", "SECRET-ORDER-100", "DL-SECRET-100",
           "Secret rule P100", "Secret channel P100", "secret-hook.example",
           "Secret downtime P100", "Secret shift P100", "Secret owner rule P100")  # fmt: skip
METHODS = ("get", "post", "put", "patch", "delete")
SKIP = {"logout", "login"}  # signing in and out is not plant data


def walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            if p.app_name == "admin":  # the admin site is staff-only; checked separately
                continue
            yield from walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern) and p.name not in SKIP:
            yield prefix + str(p.pattern), p.name


URLS = sorted({name for _, name in walk(get_resolver().url_patterns)})


@pytest.fixture
def world(alice, p100, p200):
    """P100's data, with marked identifiers, in every kind of row a URL can show."""
    now = timezone.now()
    System.objects.filter(code="MES").update(replay_url="http://127.0.0.1:9/replay")
    long_ago = now - timedelta(hours=3)
    keys = {"order": "SECRET-ORDER-100"}
    ingest_events(
        [
            event("released", correlation_id="PO-SECRET-100", plant="P100", at=long_ago,
                  business_keys=keys),
            event("released", correlation_id="PO-SECRET-100-STUCK", plant="P100", at=long_ago,
                  business_keys={"order": "SECRET-ORDER-100-B"}),
            failed("received", correlation_id="PO-SECRET-100", plant="P100", source="MES",
                   at=long_ago + timedelta(minutes=1), event_id="DL-SECRET-100",
                   status="rejected", payload={"order": "SECRET-ORDER-100"}, business_keys=keys),
        ],
        now=now,
    )  # fmt: skip
    letter = DeadLetter.objects.get(external_id="DL-SECRET-100")
    bulk = requests.replay_selection(
        dead_letters=DeadLetter.objects.filter(pk=letter.pk), requested_by=alice, selection={}
    )
    rule = AlertRule.objects.create(
        name="Secret rule P100", kind="stuck", plant=p100, threshold_count=0,
        muted_until=now + timedelta(days=1),
    )  # fmt: skip
    channel = AlertChannel.objects.create(
        name="Secret channel P100", kind="webhook", url="https://secret-hook.example/x",
        secret="whsec_c2VjcmV0",
    )  # fmt: skip
    channel.plants.set([p100])
    AlertRule.objects.create(name="Secret rule P100 live", kind="stuck", plant=p100)
    evaluate_alerts(now + timedelta(minutes=5))
    assert Alert.objects.filter(plant=p100).exists()
    key, _ = ApiKey.issue("Secret key P100", plants=[p100])
    downtime = Downtime.objects.create(
        plant=p100, start=now, end=now + timedelta(hours=2), reason="Secret downtime P100"
    )
    Shift.objects.create(plant=p100, name="Secret shift P100", days=[0], start="06:00", end="14:00")
    owner_rule = OwnerRule.objects.create(name="Secret owner rule P100", plant=p100, owner=alice)
    txn = Transaction.objects.get(correlation_id="PO-SECRET-100")
    ReconciliationException.objects.create(
        rule="fan_out:order_release:received", kind="fan_out", plant=p100, flow=txn.flow,
        transaction=txn, correlation_id=txn.correlation_id, business_keys=keys,
        milestone="received", reached=["MES"], missing=["WMS"], since=long_ago,
        summary="Order SECRET-ORDER-100: received reached MES, never WMS",
    )  # fmt: skip
    agreement_rule = AgreementRule.objects.create(
        slug="secret-rule-p100", name="Secret rule P100 agreement", plant=p100, key="order",
        when_flow=txn.flow, when_milestone="released", then_flow=txn.flow,
        then_milestone="acknowledged",
    )  # fmt: skip
    return {
        "agreement_rule": agreement_rule,
        "owner_rule": owner_rule,
        "downtime": downtime,
        "key": key,
        "letter": letter,
        "bulk": bulk,
        "rule": rule,
        "channel": channel,
        "alert": Alert.objects.filter(plant=p100).first(),
        "slo": SLO.objects.get(slug="order-release-latency"),
    }


def kwargs_for(name, world):
    """How to point each URL at P100's data; a new URL with arguments must be added here."""
    letter = world["letter"]
    table = {
        "plant-detail": {"code": "P100"},
        "system-detail": {"code": "MES"},
        "flow-detail": {"code": "order_release"},
        "api-transaction": {"flow": "order_release", "correlation_id": "PO-SECRET-100"},
        "transaction-detail": {"flow": "order_release", "correlation_id": "PO-SECRET-100"},
        "plant-overview": {"code": "P100"},
        "plant-wall": {"code": "P100"},
        "plant-slo": {"code": "P100", "slug": world["slo"].slug},
        "api-slo": {"pk": world["slo"].pk},
        "api-dead-letters-bulk-detail": {"bulk_id": world["bulk"].pk},
        "api-dead-letters-bulk-cancel": {"bulk_id": world["bulk"].pk},
        "api-dead-letter": {"id": letter.external_id},
        "dead-letter-bulk-progress": {"bulk_id": world["bulk"].pk},
        "dead-letter": {"pk": letter.pk},
        "dead-letter-replay": {"pk": letter.pk},
        "api-alert-channel": {"pk": world["channel"].pk},
        "api-alert-channel-test": {"pk": world["channel"].pk},
        "api-alert-channel-rotate": {"pk": world["channel"].pk},
        "api-alert-rule": {"pk": world["rule"].pk},
        "api-alert": {"pk": world["alert"].pk},
        "api-key": {"pk": world["key"].pk},
        "api-key-revoke": {"pk": world["key"].pk},
        "api-members": {"code": "P100"},
        "api-member": {"code": "P100", "username": "bob"},
        "api-shifts": {"code": "P100"},
        "api-downtimes": {"code": "P100"},
        "api-downtime": {"code": "P100", "pk": world["downtime"].pk},
        "api-owner-rule": {"pk": world["owner_rule"].pk},
        "api-agreement-rule": {"pk": world["agreement_rule"].pk},
    }
    if name == "api-dead-letter-action":
        actions = ("replay", "discard", "resolve", "assign", "notes", "preview")
        return [{"id": letter.external_id, "action": a} for a in actions]
    return [table.get(name, {})]


def snapshot(world):
    """What must not change: P100's dead letter, replays, transaction, rules and channels."""
    letter = DeadLetter.objects.get(pk=world["letter"].pk)
    channel = AlertChannel.objects.get(pk=world["channel"].pk)
    return {
        "letter": (letter.state, letter.assignee_id, letter.payload_version),
        "trail": DeadLetterChange.objects.filter(dead_letter=letter).count(),
        "replays": sorted(Replay.objects.values_list("id", "state")),
        "bulks": BulkAction.objects.count(),
        "txn": list(Transaction.objects.filter(plant__code="P100").values_list("state", "plant")),
        "rules": sorted(AlertRule.objects.values_list("id", "name", "muted_until", "enabled")),
        "channel": (channel.url, channel.secret, channel.enabled, channel.previous_secret),
        "systems": sorted(System.objects.values_list("code", "replay_url")),
        "keys": sorted(ApiKey.objects.values_list("id", "revoked_at")),
        "members": sorted(PlantMembership.objects.values_list("user__username", "plant__code")),
        "people": sorted(get_user_model().objects.values_list("username", "is_active")),
        "roles": sorted(get_user_model().objects.values_list("username", "groups__name")),
        "owner_rules": sorted(OwnerRule.objects.values_list("id", "name", "owner", "enabled")),
        "agreement_rules": sorted(
            AgreementRule.objects.values_list("id", "name", "within", "enabled", "then_milestone")
        ),
        "exceptions": sorted(
            ReconciliationException.objects.values_list("id", "state", "assignee", "missing")
        ),
        "calendar": (
            sorted(Downtime.objects.values_list("id", "start", "end", "reason")),
            sorted(Shift.objects.values_list("id", "name", "start", "end")),
        ),
    }


def call(person, url, method):
    client = token_client(person)
    body = {"reason": "walk", "text": "walk", "assignee": person.username, "payload": {},
            "action": "resolve", "ids": ["DL-SECRET-100"], "name": "walk",
            "kind": "stuck"}  # fmt: skip
    if method == "get":
        return client.get(url)
    return getattr(client, method)(url, body, format="json")


def page_call(client, person, url, method):
    client.force_login(person)
    data = {"action": "resolve", "reason": "walk", "ids": "DL-SECRET-100", "confirm": "1",
            "state": "resolved", "text": "walk", "payload": "{}"}  # fmt: skip
    return getattr(client, method)(url, data) if method != "get" else client.get(url)


@pytest.mark.parametrize("name", URLS)
def test_another_plants_supervisor_reaches_nothing_of_p100(client, carol, bob, world, name):
    before = snapshot(world)
    for kwargs in kwargs_for(name, world):
        url = reverse(name, kwargs=kwargs)
        for person in (carol, bob):
            for method in METHODS:
                if url.startswith("/api/"):
                    response = call(person, url, method)
                else:
                    response = page_call(client, person, url, method)
                where = f"{method.upper()} {url} as {person.username}"
                assert response.status_code < 500, where
                if person == carol:
                    text = response.content.decode(errors="replace")
                    leaked = [s for s in SECRETS if s in text]
                    assert not leaked, f"{where} shows {leaked}"
    assert snapshot(world) == before, name


def test_every_url_is_walked():
    """The walk above covers what the urlconf serves (a new URL cannot escape it)."""
    assert len(URLS) >= 40
    assert {"api-dead-letter-action", "transaction-detail", "alert-history"} <= set(URLS)
