"""Shared by the alert tests: a fixed clock, a stuck-release rule and its transaction, dead
letters, the local receivers and channels to them, and the ids handed to the broker."""

from datetime import UTC, datetime, timedelta

import pytest

from integration_hub.models import Flow, System
from monitoring.alerts import delivery
from monitoring.alerts.channels.webhook import new_secret
from monitoring.models import AlertChannel, AlertRule, Delivery
from tests.events import event
from tests.receivers.alerts import WebhookReceiver
from tracing.ingest.pipeline import ingest_events
from tracing.models import DeadLetter

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


@pytest.fixture
def enqueued(monkeypatch):
    """Ids handed to the broker; the sending itself is driven by the test through deliver()."""
    calls = []
    monkeypatch.setattr(delivery, "enqueue", lambda ids, countdown=None: calls.append(list(ids)))
    return calls


def stuck_rule(**fields):
    fields.setdefault("name", "Order releases stuck")
    fields.setdefault("severity", "critical")
    fields.setdefault("threshold_count", 0)
    return AlertRule.objects.create(kind="stuck", **fields)


def stuck_release(corr="PO-9", plant="P100", at=NOW - timedelta(hours=2)):
    ingest_events([event("released", correlation_id=corr, plant=plant, at=at)], now=at + MIN)


@pytest.fixture
def hook():
    receiver = WebhookReceiver(secret=None).start()
    yield receiver
    receiver.stop()


def webhook_channel(hook, *, plants=(), flows=(), min_severity="info", **fields):
    secret = new_secret()
    hook.secret = secret
    channel = AlertChannel.objects.create(
        name=fields.pop("name", "ops webhook"),
        kind="webhook",
        url=hook.url,
        secret=secret,
        min_severity=min_severity,
        **fields,
    )
    channel.plants.set(plants)
    channel.flows.set(flows)
    return channel


def email_channel(*, plants=(), flows=(), min_severity="info", **fields):
    channel = AlertChannel.objects.create(
        name=fields.pop("name", "P100 support"),
        kind="email",
        recipients=fields.pop("recipients", ["support-p100@example.com"]),
        min_severity=min_severity,
        **fields,
    )
    channel.plants.set(plants)
    channel.flows.set(flows)
    return channel


def send_all(now):
    """What the workers would do: send every pending delivery once."""
    ids = Delivery.objects.filter(state="pending").values_list("id", flat=True)
    return [delivery.deliver(i, now) for i in list(ids)]


def dead_letter(n, *, plant, fingerprint="fp-master-data", state="new", at=NOW):
    flow = Flow.objects.get(code="order_release")
    return DeadLetter.objects.create(
        external_id=f"dl-{fingerprint}-{n}",
        fingerprint=fingerprint,
        state=state,
        flow=flow,
        plant=plant,
        source=System.objects.get(code="ERP"),
        target=System.objects.get(code="MES"),
        correlation_id=f"PO-{n}",
        error_class="master_data",
        error_code="M404",
        error_message="Material 4711 not released for plant",
        first_failed_at=at,
        last_failed_at=at,
        created_at=at,
    )
