"""The canonical trace event: validation of one reported event against the contract and catalog.

Hand-written rather than a DRF serializer per object: it runs on every event of every batch.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
from django.conf import settings
from django.db import connection
from django.db.models import Value
from django.utils.functional import cached_property

from integration_hub.calendars import Calendar
from integration_hub.models import CatalogStamp, Flow, Plant, System
from tracing.models import FAILURE_STATUSES, EventStatus

MAX_ID = 128
MAX_KEYS = 16
MAX_ATTRIBUTES = 64
MAX_PAYLOAD_BYTES = 256 * 1024
MAX_KEY_NAME = 64
MAX_KEY_VALUE = 256
MAX_ERROR_MESSAGE = 4000
FUTURE_TOLERANCE = timedelta(minutes=5)
ERROR_CLASSES = ("transient", "business_rule", "schema", "master_data", "unknown")
STATUSES = tuple(EventStatus.values)


FIELDS = frozenset(
    {
        "event_id", "correlation_id", "flow", "step", "source", "target", "plant", "status",
        "occurred_at", "business_keys", "error", "payload", "attributes",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class FlowInfo:
    id: int
    code: str
    milestones: tuple
    completing: frozenset
    stuck_after: timedelta
    fan_out: tuple = ()
    targets: tuple = ()  # target system ids, for fan-out milestones

    @property
    def fan_out_milestones(self):  # the Flow model's name (superseded.is_superseded reads it)
        return self.fan_out


class Catalog:
    """Codes → ids: three small queries, then dictionary lookups.

    Read once per process and kept while the catalog's stamp is unchanged (`current`): the
    stamp is one query, the catalog three plus building it, on every ingest batch.
    """

    _kept = {}  # database alias → (stamp token, Catalog)

    @classmethod
    def current(cls):
        """The catalog as stored now: the one kept, or read afresh when its stamp changed.

        The stamp is read before the catalog, so a change committed in between is read again
        next time rather than kept under the newer stamp."""
        token = CatalogStamp.current()
        kept = cls._kept.get(connection.alias)
        if token is not None and kept is not None and kept[0] == token:
            return kept[1]
        catalog = cls()
        if token is not None:
            cls._kept[connection.alias] = (token, catalog)
        return catalog

    def __init__(self):
        self.flows = {
            f.code: FlowInfo(
                f.id,
                f.code,
                tuple(f.milestones),
                frozenset(f.completing_milestones),
                f.stuck_after,
                tuple(f.fan_out_milestones),
                tuple(sorted(s.id for s in f.target_systems.all())),
            )
            for f in Flow.objects.prefetch_related("target_systems")
        }
        self.flows_by_id = {f.id: f for f in self.flows.values()}
        systems = System.objects.annotate(entry=Value("system")).order_by()
        plants = Plant.objects.annotate(entry=Value("plant")).order_by()
        both = systems.values_list("entry", "code", "id").union(
            plants.values_list("entry", "code", "id"), all=True
        )
        codes = {"system": {}, "plant": {}}
        for kind, code, pk in both:
            codes[kind][code] = pk
        self.systems, self.plants = codes["system"], codes["plant"]

    @cached_property
    def calendar(self):
        """Every plant's planned downtime, read on first use and kept with the catalog (the
        stamp covers downtime too): settling a transaction needs its plant's stops ahead."""
        return Calendar.everything()

    @staticmethod
    def valid(values):
        return ", ".join(sorted(values)) or "none registered"


@dataclass(slots=True)
class CleanEvent:
    event_id: str
    correlation_id: str
    flow: FlowInfo
    step: str
    source_id: int
    target_id: int | None
    plant_id: int
    status: str
    occurred_at: datetime
    business_keys: dict
    error_class: str
    error_code: str
    error_message: str
    payload_json: str | None
    attributes_json: str | None
    source: str
    target: str | None
    plant: str
    payload: object
    transaction_id: int | None = None
    occurred_iso: str | None = None  # occurred_text(), once made

    @property
    def is_failure(self):
        return self.status in FAILURE_STATUSES

    def occurred_text(self):
        """occurred_at as ISO 8601 text, formatted once: the fold and the event row both
        write it, and formatting a datetime costs more than the rest of either use."""
        if self.occurred_iso is None:
            self.occurred_iso = self.occurred_at.isoformat()
        return self.occurred_iso


def text_problem(value):
    """Why a string cannot be stored as text (NUL, a lone surrogate), or None."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (it holds a lone surrogate)"
    return None


def id_field(event, name, errors, required=True, max_length=MAX_ID):
    value = event.get(name)
    if value is None:
        if required:
            errors[name] = ["This field is required."]
        return None
    if not isinstance(value, str):
        errors[name] = [f"Must be a string, not {type(value).__name__}."]
    elif not 1 <= len(value) <= max_length:
        errors[name] = [f"Must be 1-{max_length} characters long."]
    elif problem := text_problem(value):
        errors[name] = [f"It {problem}."]
    else:
        return value
    return None


def _code(event, name, known, errors, required=True):
    value = event.get(name)
    if value is None:
        if required:
            errors[name] = ["This field is required."]
        return None
    if not isinstance(value, str):
        errors[name] = [f"Must be a string code, not {type(value).__name__}."]
        return None
    if value not in known:
        errors[name] = [f"Unknown {name} {value[:64]!r}; valid: {Catalog.valid(known)}."]
        return None
    return known[value]


def timestamp_field(event, name, now, errors, required=True):
    """An RFC 3339 time with offset, at most 5 minutes ahead of `now` and at most
    INGEST_MAX_AGE_DAYS behind it; None (and an error under `name`) otherwise."""
    value = event.get(name)
    if value is None:
        if required:
            errors[name] = ["This field is required."]
        return None
    if not isinstance(value, str):
        errors[name] = ["Must be an RFC 3339 string such as 2026-11-20T06:00:05+01:00."]
        return None
    parsed, problem = parse_timestamp(value, TimeBounds(now))
    if problem:
        errors[name] = [problem]
    return parsed


class TimeBounds:
    """What a reported time may be around `now`: INGEST_MAX_AGE_DAYS back, 5 minutes ahead."""

    __slots__ = ("now", "max_age", "earliest", "latest")

    def __init__(self, now):
        self.now, self.max_age = now, timedelta(days=settings.INGEST_MAX_AGE_DAYS)
        self.earliest, self.latest = now - self.max_age, now + FUTURE_TOLERANCE


def parse_timestamp(value, bounds):
    """(UTC time, None) for an RFC 3339 string within `bounds`, else (None, why not)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None, f"{value[:64]!r} is not RFC 3339 (e.g. 2026-11-20T06:00:05+01:00)."
    if parsed.tzinfo is None:
        return None, "Must carry a UTC offset (Z or +01:00)."
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 with an offset falls off the calendar
        return None, f"{value[:64]} is outside the calendar this hub accepts."
    if parsed < bounds.earliest:
        return None, (
            f"{value[:64]} is more than {bounds.max_age.days} days in the past "
            "(INGEST_MAX_AGE_DAYS)."
        )
    if parsed > bounds.latest:
        return None, (
            f"{value} is more than 5 minutes ahead of the server clock ({bounds.now.isoformat()})."
        )
    return parsed, None


def string_map(event, name, limit, errors):
    value = event.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors[name] = [f"Must be an object of string to string, not {type(value).__name__}."]
        return None
    if len(value) > limit:
        errors[name] = [f"At most {limit} keys; got {len(value)}."]
        return None
    problems = []
    for key, val in value.items():
        if not isinstance(val, str):
            problems.append(f"{key!r}: value must be a string, not {type(val).__name__}.")
        elif not 0 < len(key) <= MAX_KEY_NAME or not 0 < len(val) <= MAX_KEY_VALUE:
            problems.append(
                f"{key[:64]!r}: names 1-{MAX_KEY_NAME}, values 1-{MAX_KEY_VALUE} characters."
            )
        elif problem := (text_problem(key) or text_problem(val)):
            problems.append(f"{key[:64]!r}: {problem}.")
    if problems:
        errors[name] = problems
        return None
    return value


def error_field(event, status, errors):
    value = event.get("error")
    if value is None:
        if status in FAILURE_STATUSES:
            errors["error"] = [f"Required when status is {status}: {{class, code, message}}."]
            return None
        return ("", "", "")
    if not isinstance(value, dict):
        errors["error"] = ["Must be an object {class, code, message}."]
        return None
    problems = []
    klass = value.get("class")
    if klass not in ERROR_CLASSES:
        problems.append(f"class must be one of {', '.join(ERROR_CLASSES)}; got {klass!r}.")
    code = value.get("code", "")
    if not isinstance(code, str) or len(code) > 128:
        problems.append("code must be a string of at most 128 characters.")
    message = value.get("message", "")
    if not isinstance(message, str) or len(message) > MAX_ERROR_MESSAGE:
        problems.append(f"message must be a string of at most {MAX_ERROR_MESSAGE} characters.")
    unknown = set(value) - {"class", "code", "message"}
    if unknown:
        problems.append(
            f"unknown keys {', '.join(sorted(unknown))}; allowed: class, code, message."
        )
    if not problems and (problem := (text_problem(code) or text_problem(message))):
        problems.append(f"code and message {problem}.")
    if problems:
        errors["error"] = problems
        return None
    return (klass, code, message)


def json_blob(event, name, errors, *, max_bytes=None, max_keys=None):
    if name not in event or event[name] is None:
        return None
    value = event[name]
    if max_keys is not None:
        if not isinstance(value, dict):
            errors[name] = [f"Must be an object, not {type(value).__name__}."]
            return None
        if len(value) > max_keys:
            errors[name] = [f"At most {max_keys} keys; got {len(value)}."]
            return None
    blob, problem = dump_json(value, max_bytes=max_bytes)
    if problem:
        errors[name] = [problem]
    return blob


def dump_json(value, *, max_bytes=None):
    """(JSON text, None) for a value storable as JSON within `max_bytes`, else (None, why not)."""
    try:
        blob = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError) as exc:
        if "64-bit" in str(exc):
            return (
                None,
                "Holds an integer beyond 64 bits; send it as a string so it is kept exactly.",
            )
        return None, f"Not storable as JSON: {exc}."
    if max_bytes is not None and len(blob) > max_bytes:
        return None, f"At most {max_bytes // 1024} KiB; got {len(blob) // 1024} KiB."
    if b"\\u0000" in blob:
        return None, "Must not contain NUL characters (\\u0000)."
    return blob.decode(), None


def validate_event(event, *, catalog, now, api_key=None):
    """Return (CleanEvent, None) or (None, {field: [messages]}), checking every field."""
    if not isinstance(event, dict):
        return None, {
            "non_field_errors": [f"Each event must be an object, not {type(event).__name__}."]
        }
    errors = {}
    unknown = set(event) - FIELDS
    if unknown:
        errors["non_field_errors"] = [
            f"Unknown fields {', '.join(sorted(unknown)[:10])}; "
            f"allowed: {', '.join(sorted(FIELDS))}."
        ]
    event_id = id_field(event, "event_id", errors)
    correlation_id = id_field(event, "correlation_id", errors)
    flow = None
    flow_code = event.get("flow")
    if flow_code is None:
        errors["flow"] = ["This field is required."]
    elif not isinstance(flow_code, str) or flow_code not in catalog.flows:
        errors["flow"] = [
            f"Unknown flow {str(flow_code)[:64]!r}; valid: {Catalog.valid(catalog.flows)}."
        ]
    else:
        flow = catalog.flows[flow_code]
    step = event.get("step")
    if step is None:
        errors["step"] = ["This field is required."]
    elif flow is not None and step not in flow.milestones:
        errors["step"] = [
            f"{str(step)[:64]!r} is not a milestone of {flow.code}; "
            f"valid: {', '.join(flow.milestones)}."
        ]
    source_id = _code(event, "source", catalog.systems, errors)
    target_id = _code(event, "target", catalog.systems, errors, required=False)
    plant_id = _code(event, "plant", catalog.plants, errors)
    status = event.get("status", EventStatus.OK)
    if not isinstance(status, str) or status not in STATUSES:
        errors["status"] = [f"Must be one of {', '.join(STATUSES)}; got {str(status)[:32]!r}."]
        status = None  # judged above; the error rules below need a plain value
    occurred_at = timestamp_field(event, "occurred_at", now, errors)
    business_keys = string_map(event, "business_keys", MAX_KEYS, errors)
    error = error_field(event, status, errors)
    payload_json = json_blob(event, "payload", errors, max_bytes=MAX_PAYLOAD_BYTES)
    attributes_json = json_blob(event, "attributes", errors, max_keys=MAX_ATTRIBUTES)
    if (
        api_key is not None
        and "source" not in errors
        and "plant" not in errors
        and not api_key.allows(system_code=event["source"], plant_code=event["plant"])
    ):
        errors["source"] = [
            f"This API key may not report for source {event['source']} at plant {event['plant']}."
        ]
    if errors:
        return None, errors
    return (
        CleanEvent(
            event_id=event_id,
            correlation_id=correlation_id,
            flow=flow,
            step=step,
            source_id=source_id,
            target_id=target_id,
            plant_id=plant_id,
            status=status,
            occurred_at=occurred_at,
            business_keys=business_keys,
            error_class=error[0],
            error_code=error[1],
            error_message=error[2],
            payload_json=payload_json,
            attributes_json=attributes_json,
            source=event["source"],
            target=event.get("target"),
            plant=event["plant"],
            payload=event.get("payload"),
        ),
        None,
    )
