"""Webhooks signed per Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature.

The signature is `v1,` + base64(HMAC-SHA256(key, "id.timestamp.body")), the key being the
base64 part of the channel's `whsec_` secret. During a rotation's overlap both the new and the
previous secret sign (space-separated), so a receiver can switch over without losing notices.
"""

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
import urllib.error
import urllib.request

from django.utils import timezone

from monitoring.alerts.channels.errors import ChannelError
from monitoring.alerts.channels.links import link_titles

SECRET_PREFIX = "whsec_"


TRANSIENT_STATUSES = {408, 425, 429}


def new_secret():
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret, message_id, timestamp, body):
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(secrets_, message_id, timestamp, body):
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            f"v1,{sign(s, message_id, timestamp, body)}" for s in secrets_
        ),
    }


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect is reported as the 3xx it is, not followed with a GET


_opener = urllib.request.build_opener(_NoRedirects)


def send(delivery):
    channel = delivery.channel
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "integration-hub-alerts/1",
        **signed_headers(
            channel.signing_secrets(timezone.now()), delivery.message_id, timestamp, body
        ),
    }
    request = urllib.request.Request(channel.url, data=body, headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=channel.timeout_seconds) as response:
            delivery.response_status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
        transient = status >= 500 or status in TRANSIENT_STATUSES
        raise ChannelError(
            f"HTTP {status} {exc.reason}", permanent=not transient, status=status
        ) from None
    except TimeoutError as exc:
        raise ChannelError(f"timed out after {channel.timeout_seconds} s: {exc}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ChannelError(f"connection failed: {reason}") from None


# --- Presets: the hub's own document, or a message Slack / Teams incoming webhooks accept ----


def slack_text(text):
    """Text shown literally in Slack: `<!channel>`, `<url|label>` and entities are neutralised."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~])")


def teams_text(text):
    """Text shown literally in an Adaptive Card (CommonMark subset): punctuation backslashed,
    so a reporter's message cannot become a link or formatting."""
    return _MARKDOWN.sub(r"\\\1", text)


def _line(doc):
    state = {"fired": "FIRING", "repeat": "STILL FIRING", "resolved": "RESOLVED"}.get(
        doc["transition"], doc["transition"].upper()
    )
    where = " · ".join(x for x in (doc.get("plant"), doc.get("flow")) if x)
    return f"[{doc['severity'].upper()}] {state}{f' ({where})' if where else ''}: {doc['summary']}"


def _figures(doc):
    f = doc.get("figures") or {}
    if "value" not in f:
        return ""
    return f"{f['value']} {f.get('unit', '')} (threshold {f.get('threshold')})"


def standard(doc):
    return doc


def slack(doc):
    body = slack_text(f"{_line(doc)}\n{_figures(doc)}")
    # Slack's link syntax is <url|title>: the title is escaped, the URL is ours.
    shown = " · ".join(f"<{url}|{slack_text(title)}>" for title, url in link_titles(doc))
    return {"text": f"{body}\n{shown}".replace("\n\n", "\n"), "hub": doc}


def teams(doc):
    facts = [
        {"title": "Severity", "value": doc["severity"]},
        {"title": "Plant", "value": teams_text(doc.get("plant") or "all")},
        {"title": "Figure", "value": teams_text(_figures(doc) or "-")},
        {"title": "At", "value": doc["at"]},
    ]
    card = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": teams_text(_line(doc)), "wrap": True, "weight": "Bolder"},
            {"type": "FactSet", "facts": facts},
        ],
        "actions": [
            {"type": "Action.OpenUrl", "title": title, "url": url}
            for title, url in link_titles(doc)
        ],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }


PRESETS = {"standard": standard, "slack": slack, "teams": teams}
