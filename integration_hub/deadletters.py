"""Dead-letter capture: failed messages kept, with their payload, for triage and replay.

Two doors: a failed/rejected trace event that carries a payload (ingestion), and a direct report
from middleware (POST /api/v1/dead-letters). Both are idempotent on the dead letter's id.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from integration_hub.fingerprint import fingerprint
from integration_hub.models import DeadLetter, DeadLetterChange, Flow, Plant, System

# Keys that name one business object, most specific to the journey first: a bulk replay sends
# one order's steps in flow order, so the order number wins over a lot or delivery.
ORDERING_KEYS = (
    "order", "delivery", "shipment", "lot", "batch", "handling_unit", "serial", "nonconformance",
)  # fmt: skip
ERROR_CLASSES = ("transient", "business_rule", "schema", "master_data", "unknown")


def business_key_of(keys):
    """The identifying "name:value" a bulk replay orders by, or ""."""
    for name in ORDERING_KEYS:
        value = (keys or {}).get(name)
        if isinstance(value, str) and value:
            return f"{name}:{value}"[:300]
    return ""


def dead_letters_for_events(events, event_pks):
    """Create one dead letter per failed/rejected event that carries a payload (idempotent).

    `events` are validated events just inserted; `event_pks` maps their event_id to the row id.
    """
    DeadLetter.objects.bulk_create(
        [
            DeadLetter(
                external_id=e.event_id,
                event_id=event_pks[e.event_id],
                transaction_id=e.transaction_id,
                fingerprint=fingerprint(
                    flow=e.flow.code,
                    target=e.raw.get("target"),
                    error_class=e.error_class,
                    error_code=e.error_code,
                    message=e.error_message,
                ),
                flow_id=e.flow.id,
                plant_id=e.plant_id,
                source_id=e.source_id,
                target_id=e.target_id,
                correlation_id=e.correlation_id,
                step=e.step,
                error_class=e.error_class,
                error_code=e.error_code,
                error_message=e.error_message,
                payload=e.raw.get("payload"),
                business_keys=e.business_keys,
                business_key=business_key_of(e.business_keys),
                first_failed_at=e.occurred_at,
                last_failed_at=e.occurred_at,
            )
            for e in events
        ],
        ignore_conflicts=True,
    )


# --- direct reports ------------------------------------------------------------------------


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
    from tracing.models import Transaction

    now = now or timezone.now()
    values = clean_report(data, api_key=api_key, now=now)
    existing = DeadLetter.objects.filter(external_id=values["external_id"]).first()
    if existing is not None:
        return Reported(existing, False)
    txn = Transaction.objects.filter(
        flow=values["flow"], correlation_id=values["correlation_id"]
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
        return Reported(DeadLetter.objects.get(external_id=values["external_id"]), False)
    return Reported(letter, True)


# --- superseded ----------------------------------------------------------------------------


def _time_of(value):
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def is_superseded(letter, txn, milestones):
    """Whether the transaction reached the letter's milestone (or a later one) after it failed."""
    if txn is None or not letter.step or letter.step not in milestones:
        return False
    reached = txn.milestones_last_ok or {}
    later = milestones[milestones.index(letter.step) :]
    return any(_time_of(reached[m]) > letter.last_failed_at for m in later if m in reached)


def mark_superseded(queryset=None, *, now=None, chunk=1000):
    """Mark open dead letters whose transaction has since reached their milestone; return ids.

    Looks only at open letters not yet marked whose transaction changed after they failed.
    """
    from django.db.models import F

    now = now or timezone.now()
    qs = DeadLetter.objects.all() if queryset is None else queryset
    qs = (
        qs.filter(
            state__in=DeadLetter.OPEN_STATES,
            superseded_at__isnull=True,
            transaction__isnull=False,
            transaction__updated_at__gt=F("last_failed_at"),
        )
        .select_related("transaction", "flow")
        .only(
            "id",
            "state",
            "step",
            "last_failed_at",
            "flow__milestones",
            "transaction__milestones_last_ok",
            "transaction__updated_at",
        )  # fmt: skip
        .order_by("id")
    )
    marked = [
        letter.id
        for letter in qs.iterator(chunk_size=chunk)
        if is_superseded(letter, letter.transaction, letter.flow.milestones)
    ]
    for start in range(0, len(marked), chunk):
        ids = marked[start : start + chunk]
        with transaction.atomic():
            DeadLetter.objects.filter(id__in=ids, superseded_at__isnull=True).update(
                superseded_at=now, updated_at=now
            )
            DeadLetterChange.objects.bulk_create(
                DeadLetterChange(
                    dead_letter_id=i,
                    at=now,
                    kind="superseded",
                    text="Its transaction reached this milestone after it failed.",
                )  # fmt: skip
                for i in ids
            )
    return marked
