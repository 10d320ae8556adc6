"""Outbound channels behind one small interface: `send(delivery) -> None`.

A channel raises ChannelError when a delivery did not get through; `permanent` says whether a
retry could help (a 4xx from a webhook, a refused address) or not (a 5xx, a timeout).
One module per kind: email.py, webhook.py. What is sent is built here, once, when the delivery
row is created (`payload_for`), so every attempt sends the same body.
"""

from monitoring.alerts.channels import email, webhook
from monitoring.alerts.channels.errors import ChannelError
from monitoring.alerts.channels.links import base_url, cause, links
from monitoring.models import Alert, AlertChannel, AlertTransition

__all__ = ["ChannelError", "send", "payload_for", "target_of", "test_payload"]


def send(delivery):
    """Send one delivery through its channel's kind; raises ChannelError."""
    kinds = {AlertChannel.Kind.EMAIL: email, AlertChannel.Kind.WEBHOOK: webhook}
    kinds[delivery.channel.kind].send(delivery)


def target_of(channel):
    if channel.kind == AlertChannel.Kind.EMAIL:
        return ", ".join(channel.recipients)
    return channel.url


def alert_document(alert, transition):
    """The notice as JSON: alert id, rule, severity, state, plant, flow, figures, links, times."""
    resolved = transition.kind == AlertTransition.Kind.RESOLVED
    found = cause(alert)
    return {
        "type": f"alert.{transition.kind}",
        "alert_id": alert.id,
        "transition": transition.kind,
        "repeat": transition.number,
        "dedupe_key": alert.dedupe_key,
        "rule": {"id": alert.rule_id, "name": alert.rule_name, "kind": alert.rule_kind},
        "severity": alert.severity,
        "state": Alert.State.RESOLVED if resolved else Alert.State.FIRING,
        "plant": alert.plant.code if alert.plant else None,
        "flow": alert.flow.code if alert.flow else None,
        "system": alert.system.code if alert.system else None,
        "subject": alert.subject,
        "summary": transition.summary,
        "figures": transition.figures,
        "since": alert.since.isoformat(),
        "fired_at": alert.fired_at.isoformat(),
        "resolved_at": transition.at.isoformat() if resolved else None,
        "at": transition.at.isoformat(),
        "links": links(alert, found),
        "cause_title": found[0] if found else None,
    }


def test_document(channel, now):
    return {
        "type": "alert.test",
        "alert_id": None,
        "transition": "test",
        "rule": None,
        "severity": "info",
        "state": "test",
        "plant": None,
        "flow": None,
        "summary": f"Test notice for channel {channel.name!r}: if you read this, it works.",
        "figures": {},
        "at": now.isoformat(),
        "links": {"dashboard": f"{base_url()}/", "alert": f"{base_url()}/alerts/"},
    }


def payload_for(channel, alert, transition):
    return shape(channel, alert_document(alert, transition))


def test_payload(channel, now):
    return shape(channel, test_document(channel, now))


def shape(channel, document):
    """The body a channel sends: the hub document, or a Slack/Teams-compatible message."""
    if channel.kind == AlertChannel.Kind.WEBHOOK:
        return webhook.PRESETS[channel.preset](document)
    return document
