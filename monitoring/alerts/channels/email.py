"""Email through Django's mailers (MAILERS from EMAIL_URL): plain text and HTML."""

import smtplib
from datetime import UTC, datetime

from django.core import mail
from django.template.loader import render_to_string

from monitoring.alerts.channels.errors import ChannelError
from monitoring.alerts.channels.links import link_titles

STATES = {"fired": "FIRING", "repeat": "STILL FIRING", "resolved": "RESOLVED", "test": "TEST"}


def subject(doc):
    where = " ".join(x for x in (doc.get("plant"), doc.get("flow")) if x)
    name = (doc.get("rule") or {}).get("name") or "Test notice"
    state = STATES.get(doc["transition"], doc["transition"].upper())
    return f"[{doc['severity'].upper()}] {state}: {name}{f' — {where}' if where else ''}"


def readable(iso):
    """'2026-11-23 11:00:00 UTC' from an ISO time in the payload (UTC, as stored)."""
    if not iso:
        return ""
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def build(delivery):
    doc = delivery.payload
    context = {
        "doc": doc,
        "figures": doc.get("figures") or {},
        "links": link_titles(doc),
        "state_label": STATES.get(doc["transition"], doc["transition"]),
        "when": {k: readable(doc.get(k)) for k in ("since", "fired_at", "resolved_at", "at")},
    }
    message = mail.EmailMultiAlternatives(
        subject=subject(doc),
        body=render_to_string("alerts/email.txt", context),
        to=list(delivery.channel.recipients),
        headers={"X-Hub-Message-Id": delivery.message_id},
    )
    message.attach_alternative(render_to_string("alerts/email.html", context), "text/html")
    return message


def send(delivery):
    if not delivery.channel.recipients:
        raise ChannelError("the channel has no recipients", permanent=True)
    message = build(delivery)
    try:
        mail.mailers.default.send_messages([message])
    except smtplib.SMTPRecipientsRefused as exc:
        raise ChannelError(f"recipients refused: {exc.recipients}", permanent=True) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise ChannelError(f"SMTP: {exc}") from None
