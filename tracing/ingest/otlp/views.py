"""POST /v1/traces: the OTLP/HTTP door. Each span goes through the same pipeline as
/api/v1/events; answers follow the OTLP/HTTP specification (partialSuccess, google.rpc.Status)."""

import orjson
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from integration_hub.rate_limits import RateLimited, spend_for_key
from integration_hub.unavailable import Saturated, is_unavailable
from tracing.ingest import metrics
from tracing.ingest.backlog import admit
from tracing.ingest.http import BadRequest, api_key_from, read_body
from tracing.ingest.otlp.spans import Malformed, decode, map_spans, rejection_message
from tracing.ingest.pipeline import ingest_events

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# google.rpc.Code of each HTTP answer, for the Status body the specification asks for.
RPC_CODES = {400: 3, 401: 16, 405: 12, 413: 8, 415: 3, 429: 8, 503: 14}


def _varint(number):
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        out.append(low | (0x80 if number else 0))
        if not number:
            return bytes(out)


def status_response(status, message, *, as_json, retry_after=None):
    """A google.rpc.Status {code, message} body, in the request's encoding."""
    code = RPC_CODES.get(status, 2)
    if as_json:
        body, content_type = orjson.dumps({"code": code, "message": message}), JSON
    else:
        text = message.encode()
        body = b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text
        content_type = PROTOBUF
    response = HttpResponse(body, status=status, content_type=content_type)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def export_response(rejected, message, *, as_json):
    """200; with partialSuccess {rejectedSpans, errorMessage} when some spans were rejected."""
    if as_json:
        body = {}
        if rejected:
            body["partialSuccess"] = {"rejectedSpans": rejected, "errorMessage": message}
        return HttpResponse(orjson.dumps(body), content_type=JSON)
    answer = ExportTraceServiceResponse()
    if rejected:
        answer.partial_success.CopyFrom(
            ExportTracePartialSuccess(rejected_spans=rejected, error_message=message)
        )
    return HttpResponse(answer.SerializeToString(), content_type=PROTOBUF)


@csrf_exempt
def traces_endpoint(request):
    """Spans in, trace events stored; 200 with partialSuccess naming each rejected span."""
    content_type = request.content_type or ""
    as_json = content_type != PROTOBUF
    if request.method != "POST":
        response = status_response(405, "Use POST.", as_json=as_json)
        response["Allow"] = "POST"
        return response
    now = timezone.now()
    with metrics.request_timer("otlp"):
        try:
            return _export(request, content_type, as_json=as_json, now=now)
        except BadRequest as exc:
            return status_response(exc.status, exc.body["error"], as_json=as_json)
        except RateLimited as exc:
            return status_response(
                exc.status, exc.message, as_json=as_json, retry_after=exc.retry_after_header
            )
        except Saturated as exc:
            return status_response(503, exc.message, as_json=as_json, retry_after=exc.retry_after)
        except (OperationalError, InterfaceError) as exc:
            if not is_unavailable(exc):
                raise
            wait = settings.DB_RETRY_AFTER_SECONDS
            message = f"The database is not answering; nothing was stored. Retry after {wait} s."
            return status_response(503, message, as_json=as_json, retry_after=wait)


def _export(request, content_type, *, as_json, now):
    key = api_key_from(request)
    if content_type not in (PROTOBUF, JSON):
        raise BadRequest(
            415, f"Content-Type must be {PROTOBUF} or {JSON}, not {content_type or 'none'!r}."
        )
    try:
        export = decode(read_body(request), as_json=as_json)
    except Malformed as exc:
        raise BadRequest(400, str(exc)) from None
    mapped = map_spans(export)
    total = len(mapped.ids)
    if total > settings.INGEST_MAX_EVENTS:
        raise BadRequest(
            413, f"At most {settings.INGEST_MAX_EVENTS} spans per request; got {total}."
        )
    spend_for_key(key, total)  # every span counts against the key's events/s
    rejected = dict(mapped.rejected)
    if mapped.events:
        now = admit(now, incoming=len(mapped.events))
        result = ingest_events(mapped.events, api_key=key, now=now)
        for item in result.rejected:
            rejected[mapped.positions[item["index"]]] = item["errors"]
    key.touch(now)
    message = rejection_message(rejected, mapped.ids, total=total) if rejected else ""
    return export_response(len(rejected), message, as_json=as_json)
