"""What a replay would send: destination, headers, payload and the diff of an edit."""

import difflib
import json
from urllib.parse import quote

from monitoring.models import Replay

UNCHANGED = object()
# Replays that reached the target (or were given up on after trying): a later one is a
# deliberate re-replay with a key of its own. Cancelled or superseded ones never left.
SENT_REPLAY_STATES = ("succeeded", "failed")


SENSITIVE = ("authorization", "cookie", "token", "secret", "api-key", "apikey", "password")


class ReplayError(Exception):
    """A replay that cannot be asked for; `field` names what is wrong, `status` the HTTP code."""

    status = 409

    def __init__(self, message, field="non_field_errors"):
        super().__init__(message)
        self.field = field


class NoReplayEndpoint(ReplayError):
    pass


class NotReplayable(ReplayError):
    pass


class InvalidPayload(ReplayError):
    status = 400


class ReasonRequired(ReplayError):
    status = 400


def destination(letter):
    """The system a replay goes to (the dead letter's target) with its registered endpoint."""
    system = letter.target
    if system is None:
        raise NoReplayEndpoint(
            "This dead letter names no target system, so there is nowhere to replay it to.",
            "target",
        )
    if not system.replay_url:
        raise NoReplayEndpoint(
            f"{system.code} has no replay endpoint. Set its replay_url in the catalog "
            f"(admin, or PATCH /api/v1/systems/{system.code}) and try again.",
            "target",
        )
    return system


def idempotency_key(dead_letter_id, version, round_=1):
    """Stable for one dead letter, payload version and replay round: every attempt (a retry, a
    double click) carries the same key; a deliberate re-replay is round 2, 3 … with its own."""
    key = f"hub-dl-{dead_letter_id}-v{version}"
    return key if round_ == 1 else f"{key}-r{round_}"


def replay_round(letter, version):
    """The round a new replay of this payload version would be: 1 + the ones already sent."""
    sent = Replay.objects.filter(
        dead_letter=letter, payload_version=version, state__in=SENT_REPLAY_STATES
    )
    return sent.count() + 1


def require_reason_again(round_, reason):
    if round_ > 1 and not reason:
        raise ReasonRequired(
            f"This payload was sent {round_ - 1} time{'s' if round_ > 2 else ''} already. "
            "Say why it should be sent again (it goes with a new idempotency key, so the "
            "target processes it once more).",
            "reason",
        )


# Printable ASCII but "%": a header value made only of these is sent as it is.
HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%")


def header_value(text):
    """(value, encoded): `text` as it is when every character is safe in a header, else
    percent-encoded UTF-8 (RFC 3986), which a receiver reverses with one unquote()."""
    if all(c in HEADER_SAFE for c in text):
        return text, False
    return quote(text, safe=HEADER_SAFE), True


def request_headers(*, system, key, correlation_id, mask=False):
    correlation, encoded = header_value(correlation_id)
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": key,
        "X-Correlation-ID": correlation,
        "User-Agent": "integration-hub-replay/1",
    }
    if encoded:  # a correlation ID with spaces, "%", line breaks or non-ASCII letters
        headers["X-Correlation-ID-Encoding"] = "percent"
    if system.replay_auth_header and system.replay_auth_value:
        headers[system.replay_auth_header] = "********" if mask else system.replay_auth_value
    return headers


def mask_headers(headers):
    """Headers for display: values of credentials replaced."""
    return {
        name: "********" if any(s in name.lower() for s in SENSITIVE) else value
        for name, value in (headers or {}).items()
    }


def encode(payload):
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def pretty(payload):
    return json.dumps(payload, ensure_ascii=False, indent=2, sort_keys=False)


def parse_payload(text):
    """An edited payload typed by a person: JSON or InvalidPayload naming the line."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidPayload(
            f"Not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}.", "payload"
        ) from None


def payload_diff(original, edited):
    lines = difflib.unified_diff(
        pretty(original).splitlines(),
        pretty(edited).splitlines(),
        fromfile="original",
        tofile="edited",
        lineterm="",
    )
    return "\n".join(lines)


def preview(letter, payload=UNCHANGED):
    """Exactly what a replay would send now: URL, headers (secrets masked), body, and a diff."""
    system = destination(letter)
    edited = payload is not UNCHANGED and payload != letter.current_payload
    body = payload if edited else letter.current_payload
    version = letter.payload_version + 1 if edited else letter.payload_version
    round_ = 1 if edited else replay_round(letter, version)
    warnings = []
    if letter.superseded_at:
        warnings.append(
            "Superseded: its transaction reached this milestone later. Replaying would send it "
            "twice; resolve it instead unless you are sure."
        )
    return {
        "method": "POST",
        "url": system.replay_url,
        "headers": request_headers(
            system=system,
            key=idempotency_key(letter.id, version, round_),
            correlation_id=letter.correlation_id,
            mask=True,
        ),
        "body": pretty(body),
        "payload_version": version,
        "diff": payload_diff(letter.payload, body) if version > 1 else "",
        "warnings": warnings,
        "round": round_,
        "again": round_ > 1,
    }
