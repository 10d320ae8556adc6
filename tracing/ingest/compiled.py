"""The event contract compiled into msgspec types: the fast path for well-formed batches.

A `{"events": [...]}` body is split into its raw events, and each is decoded straight into
typed fields, without building the dictionaries the hand-written checks walk. The types say
what types can (required fields, strings and their lengths, status and error class values, the
size of maps); the catalog, time bounds, key limits and JSON storability are the contract's own
functions. Whatever the fast path does not take is judged by `contract.validate_event` on the
usual decoding, so every rejection carries the hand-written messages, and accepted events are
the same `CleanEvent`s either way (tests/tracing/ingest/test_compiled_contract.py holds the two
paths to each other).

What the compiled types would judge differently is kept off the fast path: a body in any other
shape, an event with a NUL escape (text columns refuse NUL; the contract names the field), and
an event with 1,000 or more opening brackets (the usual decoder refuses nesting past 1,024; the
compiled one does not), which sends the whole body the usual way.
"""

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Raw, Struct

from integration_hub import exact_json
from tracing.ingest.contract import (
    ERROR_CLASSES,
    MAX_ATTRIBUTES,
    MAX_ERROR_MESSAGE,
    MAX_ID,
    MAX_KEY_NAME,
    MAX_KEY_VALUE,
    MAX_KEYS,
    MAX_PAYLOAD_BYTES,
    STATUSES,
    CleanEvent,
    TimeBounds,
    dump_json,
    parse_timestamp,
    validate_event,
)
from tracing.models import FAILURE_STATUSES

# Below this many `[` and `{` in one event, the body cannot nest past the usual decoder's
# limit of 1,024 (the envelope adds two levels).
MAX_OPENINGS = 1000
NUL_ESCAPE = b"\\u0000"

_Id = Annotated[str, Meta(min_length=1, max_length=MAX_ID)]
_KeyName = Annotated[str, Meta(min_length=1, max_length=MAX_KEY_NAME)]
_KeyValue = Annotated[str, Meta(min_length=1, max_length=MAX_KEY_VALUE)]


class _Error(Struct, forbid_unknown_fields=True):
    klass: Literal[ERROR_CLASSES] = msgspec.field(name="class")
    code: Annotated[str, Meta(max_length=128)] = ""
    message: Annotated[str, Meta(max_length=MAX_ERROR_MESSAGE)] = ""


class _Event(Struct, forbid_unknown_fields=True):
    event_id: _Id
    correlation_id: _Id
    flow: str
    step: str
    source: str
    plant: str
    occurred_at: str
    target: str | None = None
    status: Literal[STATUSES] = "ok"
    business_keys: Annotated[dict[_KeyName, _KeyValue], Meta(max_length=MAX_KEYS)] | None = None
    error: _Error | None = None
    payload: Any = None
    attributes: Annotated[dict[str, Any], Meta(max_length=MAX_ATTRIBUTES)] | None = None


class _Envelope(Struct, forbid_unknown_fields=True):
    events: list[Raw]


_ENVELOPE = msgspec.json.Decoder(_Envelope)
_EVENT = msgspec.json.Decoder(_Event)


@dataclass(slots=True)
class TypedEvent:
    """One reported event decoded by the compiled types, with its JSON text."""

    fields: _Event
    text: bytes


def split_batch(body):
    """The events of a `{"events": [...]}` body, each a TypedEvent or (when the compiled types
    refuse it) its usual decoding; None when the whole body must be decoded the usual way
    (another shape, malformed JSON, deep nesting)."""
    try:
        raws = _ENVELOPE.decode(body).events
    except msgspec.DecodeError:
        return None
    events = []
    for raw in raws:
        text = bytes(raw)
        if text.count(b"[") + text.count(b"{") >= MAX_OPENINGS:
            return None
        if NUL_ESCAPE not in text:
            try:
                events.append(TypedEvent(_EVENT.decode(text), text))
                continue
            except msgspec.DecodeError:
                pass
        try:
            events.append(_decode_usual(text))
        except (exact_json.JSONDecodeError, exact_json.TooDeep):
            return None  # the whole body's decoding names the position
    return events


def _decode_usual(text):
    # Inside brackets, as in the body, so that exact_json sees integers where it looks for them.
    return exact_json.loads(b"[" + text + b"]")[0]


def check_typed(event, *, catalog, now, api_key=None, bounds=None):
    """The CleanEvent of a typed event when every rule of the contract holds, else None.
    (`bounds`: the TimeBounds of `now`, made once per batch.)"""
    f = event.fields
    flow = catalog.flows.get(f.flow)
    source_id = catalog.systems.get(f.source)
    plant_id = catalog.plants.get(f.plant)
    if flow is None or source_id is None or plant_id is None or f.step not in flow.milestones:
        return None
    target_id = None
    if f.target is not None and (target_id := catalog.systems.get(f.target)) is None:
        return None
    occurred_at, problem = parse_timestamp(f.occurred_at, bounds or TimeBounds(now))
    if problem:
        return None
    if f.error is not None:
        error = (f.error.klass, f.error.code, f.error.message)
    elif f.status in FAILURE_STATUSES:
        return None
    else:
        error = ("", "", "")
    payload_json = attributes_json = None
    if f.payload is not None:
        payload_json, problem = dump_json(f.payload, max_bytes=MAX_PAYLOAD_BYTES)
        if problem:
            return None
    if f.attributes is not None:
        attributes_json, problem = dump_json(f.attributes)
        if problem:
            return None
    if api_key is not None and not api_key.allows(system_code=f.source, plant_code=f.plant):
        return None
    return CleanEvent(
        event_id=f.event_id,
        correlation_id=f.correlation_id,
        flow=flow,
        step=f.step,
        source_id=source_id,
        target_id=target_id,
        plant_id=plant_id,
        status=f.status,
        occurred_at=occurred_at,
        business_keys={} if f.business_keys is None else f.business_keys,
        error_class=error[0],
        error_code=error[1],
        error_message=error[2],
        payload_json=payload_json,
        attributes_json=attributes_json,
        source=f.source,
        target=f.target,
        plant=f.plant,
        payload=f.payload,
    )


def judge(event, *, catalog, now, api_key=None, bounds=None):
    """(CleanEvent, None, value) or (None, {field: [messages]}, value) for one reported event:
    a TypedEvent or a decoded JSON value; `value` is what the contract's checks saw, if any."""
    if isinstance(event, TypedEvent):
        clean = check_typed(event, catalog=catalog, now=now, api_key=api_key, bounds=bounds)
        if clean is not None:
            return clean, None, None
        event = _decode_usual(event.text)
    clean, errors = validate_event(event, catalog=catalog, now=now, api_key=api_key)
    return clean, errors, event


@dataclass
class CheckedBatch:
    valid: list  # CleanEvent, the first of each event_id
    repeats: list  # CleanEvent whose event_id came earlier in the batch
    rejected: list  # {index, event_id, errors}, in index order
    rejected_values: list  # what each rejected event was, for the metrics' labels


def validate_events(events, *, catalog, now, api_key=None):
    """Validate a batch of TypedEvents and decoded values into a CheckedBatch.

    Each rejection is {index, event_id (when a string), errors: {field: [messages]}}; a
    repeated event_id inside the batch is a repeat of its first occurrence.
    """
    batch, seen, bounds = CheckedBatch([], [], [], []), set(), TimeBounds(now)
    for index, event in enumerate(events):
        clean, errors, value = judge(
            event, catalog=catalog, now=now, api_key=api_key, bounds=bounds
        )
        if errors:
            event_id = value.get("event_id") if isinstance(value, dict) else None
            batch.rejected.append(
                {
                    "index": index,
                    "event_id": event_id if isinstance(event_id, str) else None,
                    "errors": errors,
                }
            )
            batch.rejected_values.append(value)
        elif clean.event_id in seen:
            batch.repeats.append(clean)
        else:
            seen.add(clean.event_id)
            batch.valid.append(clean)
    return batch
