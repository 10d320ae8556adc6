"""OTLP trace export requests (protobuf or OTLP/JSON) decoded, and each span mapped to one
canonical trace event for the ingest pipeline.

Mapping (README "Sending OpenTelemetry spans"): event_id = trace ID + span ID (hex);
correlation_id = `correlation.id`, else the trace ID; flow, step (else the span name), plant,
target from `integration.*`; source from `integration.source`, else the resource's
`service.name`, either mapped through the systems' aliases; `business_key.<name>` → business
keys; other attributes → attributes; status ERROR → failed with `error.class`, `error.code`
and the status message; occurred_at = the span's end time.
"""

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from integration_hub import exact_json
from integration_hub.models import SystemAlias

BUSINESS_KEY_PREFIX = "business_key."
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Where each field of the canonical event comes from, to name it in a rejection.
FIELD_SOURCES = {
    "event_id": "traceId + spanId",
    "correlation_id": "correlation.id, else traceId",
    "flow": "integration.flow",
    "step": "integration.step, else the span name",
    "source": "integration.source, else resource service.name",
    "target": "integration.target",
    "plant": "integration.plant",
    "occurred_at": "endTimeUnixNano",
    "business_keys": "business_key.* attributes",
    "attributes": "span attributes",
    "error": "status, error.class, error.code",
    "status": "status",
}
_ID_FIELDS = {"traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id"}


class Malformed(ValueError):
    """The body is not an OTLP trace export request (400)."""


@dataclass
class MappedSpans:
    """The events to ingest, and the spans rejected before validation, by span position."""

    events: list = field(default_factory=list)
    positions: list = field(default_factory=list)  # span position of each event
    ids: list = field(default_factory=list)  # "traceId/spanId" of every span, by position
    rejected: dict = field(default_factory=dict)  # position → {field: [reasons]}


def decode(body, *, as_json):
    """An ExportTraceServiceRequest from a protobuf or OTLP/JSON body; Malformed otherwise."""
    request = ExportTraceServiceRequest()
    if not as_json:
        try:
            request.ParseFromString(body)
        except (DecodeError, RecursionError, ValueError) as exc:
            raise Malformed(f"Body is not a protobuf ExportTraceServiceRequest: {exc}.") from None
        return request
    try:
        data = exact_json.loads(body)
    except exact_json.TooDeep as exc:
        raise Malformed(str(exc)) from None
    except exact_json.JSONDecodeError as exc:
        raise Malformed(exact_json.describe(exc)) from None
    if not isinstance(data, dict):
        raise Malformed('Body must be an object {"resourceSpans": [...]}.')
    _hex_ids_to_base64(data, "")
    try:
        json_format.ParseDict(data, request, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise Malformed(f"Not an OTLP/JSON trace export request: {exc}") from None
    except RecursionError:
        raise Malformed("JSON nested too deeply.") from None
    return request


def _hex_ids_to_base64(value, path):
    """OTLP/JSON writes trace and span IDs in hex; protobuf's JSON mapping wants base64."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            _hex_ids_to_base64(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for name, item in value.items():
            where = f"{path}.{name}" if path else name
            if name in _ID_FIELDS and isinstance(item, str):
                try:
                    value[name] = base64.b64encode(bytes.fromhex(item)).decode()
                except ValueError:
                    raise Malformed(f"{where}: {item[:64]!r} is not a hex ID.") from None
            elif name != "attributes":  # attribute values are data, never IDs
                _hex_ids_to_base64(item, where)


def any_value(value):
    """An OTLP AnyValue as a plain JSON value (bytes as base64)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)


def _text(value):
    """Scalars as text (a business key or error code sent as a number); others unchanged."""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if isinstance(value, int | float) else value


def aliases():
    """{alias: system code}, from the catalog (admin: System → aliases)."""
    return dict(SystemAlias.objects.values_list("alias", "system__code"))


def spans_of(request):
    """(span, service.name) for every span of the request, in order."""
    for resource_spans in request.resource_spans:
        service = None
        for kv in resource_spans.resource.attributes:
            if kv.key == "service.name":
                service = any_value(kv.value)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield span, service


def span_event(span, *, service, alias_of):
    """The canonical event of one span; ValueError(field, reason) when its IDs are unusable."""
    if len(span.trace_id) != 16 or not any(span.trace_id):
        raise ValueError("event_id", "traceId must be 16 bytes, not all zero.")
    if len(span.span_id) != 8 or not any(span.span_id):
        raise ValueError("event_id", "spanId must be 8 bytes, not all zero.")
    trace_id = span.trace_id.hex()
    attrs = {kv.key: any_value(kv.value) for kv in span.attributes}
    source = attrs.pop("integration.source", None) or service
    event = {
        "event_id": trace_id + span.span_id.hex(),
        "correlation_id": attrs.pop("correlation.id", None) or trace_id,
        "flow": attrs.pop("integration.flow", None),
        "step": attrs.pop("integration.step", None) or span.name or None,
        "source": alias_of.get(source, source) if isinstance(source, str) else source,
        "plant": attrs.pop("integration.plant", None),
        "occurred_at": _end_time(span.end_time_unix_nano),
    }
    target = attrs.pop("integration.target", None)
    if target is not None:
        event["target"] = alias_of.get(target, target) if isinstance(target, str) else target
    if span.status.code == Status.STATUS_CODE_ERROR:
        event["status"] = "failed"
        event["error"] = {
            "class": attrs.pop("error.class", None) or "unknown",
            "code": _text(attrs.pop("error.code", "")),
            "message": span.status.message,
        }
    keys = {
        name[len(BUSINESS_KEY_PREFIX) :]: _text(value)
        for name, value in attrs.items()
        if name.startswith(BUSINESS_KEY_PREFIX)
    }
    if keys:
        event["business_keys"] = keys
    others = {name: v for name, v in attrs.items() if not name.startswith(BUSINESS_KEY_PREFIX)}
    if others:
        event["attributes"] = others
    return event


def _end_time(nanos):
    if not nanos:
        return None
    return (EPOCH + timedelta(microseconds=nanos // 1000)).isoformat()


def map_spans(request):
    """Every span of the request as an event (or a rejection before validation)."""
    mapped = MappedSpans()
    alias_of = aliases()
    for position, (span, service) in enumerate(spans_of(request)):
        mapped.ids.append(f"{span.trace_id.hex()}/{span.span_id.hex()}")
        try:
            event = span_event(span, service=service, alias_of=alias_of)
        except ValueError as exc:
            name, reason = exc.args
            mapped.rejected[position] = {name: [reason]}
            continue
        mapped.events.append(event)
        mapped.positions.append(position)
    return mapped


def rejection_message(rejected, ids, *, total, shown=10):
    """The partialSuccess errorMessage: each rejected span, its fields and their reasons."""
    parts = []
    for position in sorted(rejected)[:shown]:
        reasons = "; ".join(
            f"{name} ({FIELD_SOURCES.get(name, name)}): {' '.join(messages)}"
            for name, messages in rejected[position].items()
        )
        parts.append(f"span {position} ({ids[position]}): {reasons}")
    more = len(rejected) - shown
    tail = f" … and {more} more." if more > 0 else ""
    return f"{len(rejected)} of {total} spans rejected. " + " | ".join(parts) + tail
