"""Dead letters that middleware reports directly (POST /api/v1/dead-letters), idempotent on
their id."""

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from integration_hub.models import Flow, Plant, System
from tracing.dead_letters.capture import business_key_of
from tracing.dead_letters.fingerprint import fingerprint
from tracing.ingest.contract import ERROR_CLASSES
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


def _text(data, name, errors, *, required=True, max_length=128):
    value = data.get(name)
    if value in (None, ""):
        if required:
            errors[name] = ["This field is required."]
        return ""
    if not isinstance(value, str):
        errors[name] = [f"Must be a string, not {type(value).__name__}."]
        return ""
    if len(value) > max_length:
        errors[name] = [f"At most {max_length} characters."]
        return ""
    return value


def _time(data, name, errors):
    value = data.get(name)
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        errors[name] = ["An RFC 3339 time with offset, e.g. 2026-11-20T06:00:00+01:00."]
    return parsed


def _code(data, name, model, errors, *, required=True):
    code = _text(data, name, errors, required=required, max_length=64)
    if not code:
        return None
    row = model.objects.filter(code=code).first()
    if row is None:
        known = ", ".join(model.objects.values_list("code", flat=True)) or "none registered"
        errors[name] = [f"Unknown {name} {code!r}; valid: {known}."]
    return row


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
    external_id = _text(data, "id", errors)
    correlation_id = _text(data, "correlation_id", errors)
    flow = _code(data, "flow", Flow, errors)
    source = _code(data, "source", System, errors)
    target = _code(data, "target", System, errors, required=False)
    plant = _code(data, "plant", Plant, errors)
    step = _text(data, "step", errors, required=False, max_length=64)
    if flow and step and step not in flow.milestones:
        errors["step"] = [f"Not a milestone of {flow.code}: {', '.join(flow.milestones)}."]
    error = data.get("error")
    error_fields = {}
    if not isinstance(error, dict):
        errors["error"] = ["An object {class, code, message} is required."]
    else:
        if error.get("class") not in ERROR_CLASSES:
            errors["error.class"] = [f"One of {', '.join(ERROR_CLASSES)}."]
        for part, limit in (("code", 128), ("message", 4000)):
            value = error.get(part, "")
            if not isinstance(value, str) or len(value) > limit:
                errors[f"error.{part}"] = [f"A string of at most {limit} characters."]
        error_fields = {
            "error_class": error.get("class", ""),
            "error_code": error.get("code", "") or "",
            "error_message": error.get("message", "") or "",
        }
    headers = data.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        errors["headers"] = ["An object of header name → string value."]
    keys = data.get("business_keys", {})
    if not isinstance(keys, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in keys.items()
    ):
        errors["business_keys"] = ["An object of string → string."]
    attempts = data.get("attempts", 1)
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
        errors["attempts"] = ["A whole number of at least 1."]
    first = _time(data, "first_failed_at", errors)
    last = _time(data, "last_failed_at", errors)
    if "payload" not in data:
        errors["payload"] = ["This field is required: the message body to keep for replay."]
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
        "business_keys": keys,
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
