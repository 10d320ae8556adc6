"""Dead letters that middleware reports directly (POST /api/v1/dead-letters), idempotent on
their id."""

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from integration_hub.models import Flow, Plant, System
from tracing.dead_letters.capture import business_key_of
from tracing.dead_letters.fingerprint import fingerprint
from tracing.ingest.contract import (
    MAX_KEYS,
    MAX_PAYLOAD_BYTES,
    error_field,
    id_field,
    json_blob,
    string_map,
    text_problem,
    timestamp_field,
)
from tracing.models import DeadLetter, Transaction


class InvalidReport(ValueError):
    """A reported dead letter that cannot be stored; `errors` maps each field to its problems."""

    def __init__(self, errors):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class Reported:
    dead_letter: DeadLetter
    created: bool


def _code(data, name, model, errors, *, required=True):
    if not required and data.get(name) == "":
        return None
    code = id_field(data, name, errors, required=required, max_length=64)
    if not code:
        return None
    row = model.objects.filter(code=code).first()
    if row is None:
        known = ", ".join(model.objects.values_list("code", flat=True)) or "none registered"
        errors[name] = [f"Unknown {name} {code!r}; valid: {known}."]
    return row


MAX_ATTEMPTS = 1_000_000
MAX_HEADERS = 64
MAX_HEADER_BYTES = 16 * 1024


def _headers(data, errors):
    """The failed request's headers: name → string value, each storable text, 16 KiB in all."""
    headers = data.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        errors["headers"] = ["An object of header name → string value."]
        return {}
    problems = [
        f"{name[:64]!r}: {problem}."
        for name, value in headers.items()
        if (problem := text_problem(name) or text_problem(value))
    ]
    size = sum(len(k) + len(v) for k, v in headers.items())
    if len(headers) > MAX_HEADERS or size > MAX_HEADER_BYTES:
        problems.append(f"At most {MAX_HEADERS} headers and {MAX_HEADER_BYTES // 1024} KiB.")
    if problems:
        errors["headers"] = problems
        return {}
    return headers


FIELDS = frozenset(
    {
        "id", "correlation_id", "flow", "step", "source", "target", "plant", "error", "payload",
        "headers", "attempts", "first_failed_at", "last_failed_at", "business_keys",
    }
)  # fmt: skip


def clean_report(data, *, api_key=None, now=None):
    """Validate a middleware report; return DeadLetter field values or raise InvalidReport."""
    now = now or timezone.now()
    if not isinstance(data, dict):
        raise InvalidReport({"non_field_errors": ["Send one dead letter as a JSON object."]})
    errors = {}
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        errors["non_field_errors"] = [f"Unknown fields: {', '.join(unknown)}."]
    external_id = id_field(data, "id", errors)
    correlation_id = id_field(data, "correlation_id", errors)
    flow = _code(data, "flow", Flow, errors)
    source = _code(data, "source", System, errors)
    target = _code(data, "target", System, errors, required=False)
    plant = _code(data, "plant", Plant, errors)
    step = (
        ""
        if data.get("step") == ""
        else id_field(data, "step", errors, required=False, max_length=64) or ""
    )
    if flow and step and step not in flow.milestones:
        errors["step"] = [f"Not a milestone of {flow.code}: {', '.join(flow.milestones)}."]
    error = error_field(data, "failed", errors)
    error_fields = {}
    if error is not None:
        error_fields = dict(zip(("error_class", "error_code", "error_message"), error, strict=True))
    headers = _headers(data, errors)
    keys = string_map(data, "business_keys", MAX_KEYS, errors)
    attempts = data.get("attempts", 1)
    if (
        not isinstance(attempts, int)
        or isinstance(attempts, bool)
        or not 1 <= attempts <= MAX_ATTEMPTS
    ):
        errors["attempts"] = [f"A whole number from 1 to {MAX_ATTEMPTS:,}."]
    first = timestamp_field(data, "first_failed_at", now, errors, required=False)
    last = timestamp_field(data, "last_failed_at", now, errors, required=False)
    if "payload" not in data:
        errors["payload"] = ["This field is required: the message body to keep for replay."]
    else:
        json_blob(data, "payload", errors, max_bytes=MAX_PAYLOAD_BYTES)
    if first and last and last < first:
        errors["last_failed_at"] = ["Must not be before first_failed_at."]
    if (
        api_key is not None
        and source
        and plant
        and not api_key.allows(system_code=source.code, plant_code=plant.code)
    ):
        errors["source"] = [f"This API key may not report for {source.code} at {plant.code}."]
    if errors:
        raise InvalidReport(errors)
    first = first or last or now
    return {
        "external_id": external_id,
        "correlation_id": correlation_id,
        "flow": flow,
        "source": source,
        "target": target,
        "plant": plant,
        "step": step,
        "payload": data.get("payload"),
        "headers": headers,
        "attempts": attempts,
        "first_failed_at": first,
        "last_failed_at": last or first,
        "business_keys": keys or {},
        **error_fields,
    }


def report_dead_letter(data, *, api_key=None, now=None):
    """Store a dead letter that middleware reports directly; idempotent on its `id`."""
    now = now or timezone.now()
    values = clean_report(data, api_key=api_key, now=now)
    # Ids are per plant: a known id of another plant is a different dead letter, never an answer.
    mine = DeadLetter.objects.filter(plant=values["plant"], external_id=values["external_id"])
    existing = mine.first()
    if existing is not None:
        return Reported(existing, False)
    txn = Transaction.objects.filter(
        plant=values["plant"], flow=values["flow"], correlation_id=values["correlation_id"]
    ).first()
    letter = DeadLetter(
        **values,
        transaction=txn,
        fingerprint=fingerprint(
            flow=values["flow"].code,
            target=values["target"].code if values["target"] else None,
            error_class=values["error_class"],
            error_code=values["error_code"],
            message=values["error_message"],
        ),
        business_key=business_key_of(values["business_keys"] or (txn and txn.business_keys)),
        created_at=now,
        updated_at=now,
    )
    try:
        with transaction.atomic():
            letter.save()
    except IntegrityError:  # the same id reported concurrently
        return Reported(mine.get(), False)
    return Reported(letter, True)
