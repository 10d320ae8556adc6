"""POST /api/v1/events: the reporters' door. Plain Django (no DRF) because it is the hot path."""

import zlib

import orjson
from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from integration_hub import exact_json
from integration_hub.models import ApiKey
from integration_hub.rate_limits import RateLimited, spend_for_key
from tracing.ingest import metrics
from tracing.ingest.backlog import admit
from tracing.ingest.compiled import split_batch
from tracing.ingest.pipeline import ingest_events


class BadRequest(Exception):
    def __init__(self, status, message, **extra):
        super().__init__(message)
        self.status, self.body = status, {"error": message, **extra}


def _json(body, status):
    return HttpResponse(orjson.dumps(body), status=status, content_type="application/json")


def api_key_from(request):
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    raw = (
        token.strip()
        if scheme.lower() == "bearer"
        else request.headers.get("X-Api-Key", "").strip()
    )
    if not raw:
        raise BadRequest(
            401, "Missing API key: send 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'."
        )
    key = ApiKey.objects.find(raw)
    if key is None:
        raise BadRequest(401, "Unknown or revoked API key.")
    return key


def read_body(request):
    """The request body, gunzipped if sent so, at most INGEST_MAX_BODY_BYTES (413 past that)."""
    limit = settings.INGEST_MAX_BODY_BYTES
    too_big = f"Request body over {limit // (1024 * 1024)} MiB; send smaller batches."
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise BadRequest(413, too_big)
    body = request.read(limit + 1)
    if len(body) > limit:
        raise BadRequest(413, too_big)
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            body = inflater.decompress(body, limit + 1)
        except zlib.error as exc:
            raise BadRequest(400, f"Body is not valid gzip: {exc}.") from None
        if len(body) > limit or inflater.unconsumed_tail:
            raise BadRequest(413, too_big + " (after gunzip)")
    elif encoding not in ("identity", ""):
        raise BadRequest(415, f"Content-Encoding {encoding!r} not supported; use gzip or none.")
    return body


def json_body(request):
    """The request's body when it is JSON (415 and 413 otherwise)."""
    content_type = request.content_type or ""
    if content_type != "application/json":
        raise BadRequest(
            415, f"Content-Type must be application/json, not {content_type or 'none'!r}."
        )
    return read_body(request)


def decode(body):
    """The body decoded (400 with the reason and position when it is not JSON)."""
    try:
        return exact_json.loads(body)
    except exact_json.TooDeep as exc:
        raise BadRequest(400, str(exc)) from None
    except exact_json.JSONDecodeError as exc:
        raise BadRequest(400, exact_json.describe(exc), position=exc.pos) from None


def parse_json(request):
    """The request's JSON body (415, 413 and 400 with the reason otherwise)."""
    return decode(json_body(request))


def parse_events(request):
    """The reported events: TypedEvents and decoded values from a well-formed batch (the
    compiled contract's fast path), else the body decoded whole and checked for shape."""
    body = json_body(request)
    events = split_batch(body)
    if events is None:
        events = events_of(decode(body))
    if len(events) > settings.INGEST_MAX_EVENTS:
        raise BadRequest(
            413,
            f"At most {settings.INGEST_MAX_EVENTS} events per request; got {len(events)}.",
            field="events",
        )
    if not events:
        raise BadRequest(400, "'events' is empty.", field="events")
    return events


def events_of(data):
    """The events of a decoded body: one event object or {"events": [...]}."""
    if isinstance(data, dict) and "events" in data:
        events = data["events"]
        if not isinstance(events, list):
            raise BadRequest(400, "'events' must be a list of event objects.", field="events")
        if set(data) != {"events"}:
            extra = ", ".join(sorted(set(data) - {"events"}))
            raise BadRequest(400, f"Unknown top-level fields beside 'events': {extra}.")
    elif isinstance(data, dict):
        events = [data]
    else:
        raise BadRequest(400, 'Body must be one event object or {"events": [...]}.')
    return events


@csrf_exempt
def events_endpoint(request):
    """202 with {accepted, duplicates, rejected}; 400 with the same body when all are rejected;
    429 (or 413) past the key's rate limit, which counts every event of the batch."""
    if request.method != "POST":
        response = _json({"error": "Use POST."}, 405)
        response["Allow"] = "POST"
        return response
    now = timezone.now()
    with metrics.request_timer("events"):
        try:
            key = api_key_from(request)
            events = parse_events(request)
            spend_for_key(key, len(events))
        except BadRequest as exc:
            return _json(exc.body, exc.status)
        except RateLimited as exc:
            return exc.response()
        # A database that cannot take the batch, or a correlator too far behind, is a 503 with
        # Retry-After (the middleware).
        now = admit(now, incoming=len(events))
        result = ingest_events(events, api_key=key, now=now)
        key.touch(now)
    all_rejected = result.rejected and not result.accepted and not result.duplicates
    return _json(result.as_dict(), 400 if all_rejected else 202)
