"""Triage: finding dead letters, grouping them by cause, and the workflows analysts run on them.

Reads (`dead_letters`, `groups`) are shared by pages and API; both start from
DeadLetter.objects.for_user, so nobody sees another plant's messages.
"""

import re
from collections import defaultdict
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from integration_hub.access import can_triage
from integration_hub.models import (
    BulkAction,
    DeadLetter,
    DeadLetterChange,
    DeadLetterState,
    Flow,
    Plant,
    System,
)

FILTERS = (
    "plant", "flow", "target", "state", "error_class", "fingerprint", "age", "assignee", "q",
)  # fmt: skip
ERROR_CLASSES = ("transient", "business_rule", "schema", "master_data", "unknown")
STATE_CHOICES = ("open", "all", *DeadLetterState.values)
AGES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
AGE_RE = re.compile(r"^([<>]?)(\d{1,4})([mhd])$")
BULK_ACTIONS = ("replay", "resolve", "discard", "assign")


class InvalidFilter(ValueError):
    """A filter value that cannot be used; `field` names it."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field


class NotAllowed(PermissionError):
    """The person may read but not act (supervisors), or acts on what they cannot see."""


def parse_age(value):
    """'24h' (failed within the last 24 h) or '>24h' (longer ago) → (direction, timedelta)."""
    match = AGE_RE.match(value.strip())
    if not match:
        raise InvalidFilter(
            "age", f"{value!r} is not an age such as 1h, 24h, 7d, or >24h for older than 24 h."
        )
    sign, number, unit = match.groups()
    span = timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: int(number)})
    return (">" if sign == ">" else "<"), span


def clean_filters(params, *, strict=True):
    """{name: value} of the filters given; unknown names or values raise InvalidFilter."""
    if strict:
        unknown = sorted(set(params) - set(FILTERS))
        if unknown:
            raise InvalidFilter(
                unknown[0], f"Unknown filter {unknown[0]!r}; use {', '.join(FILTERS)}."
            )
    values = {}
    for name in FILTERS:
        value = params.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise InvalidFilter(name, f"{name} must be a string.")
        values[name] = value.strip()
    checks = {
        "plant": (Plant, "plant"),
        "flow": (Flow, "flow"),
        "target": (System, "target system"),
    }
    for name, (model, label) in checks.items():
        if name in values and not model.objects.filter(code=values[name]).exists():
            raise InvalidFilter(name, f"No {label} {values[name]!r} is registered.")
    if "state" in values and values["state"] not in STATE_CHOICES:
        raise InvalidFilter("state", f"Choose one of: {', '.join(STATE_CHOICES)}.")
    if "error_class" in values and values["error_class"] not in ERROR_CLASSES:
        raise InvalidFilter("error_class", f"Choose one of: {', '.join(ERROR_CLASSES)}.")
    if "age" in values:
        parse_age(values["age"])
    return values


def dead_letters(*, user, filters=None, now=None):
    """Dead letters this person may see that match the (clean) filters, newest failure first."""
    filters = filters or {}
    now = now or timezone.now()
    qs = DeadLetter.objects.for_user(user).select_related(
        "flow", "plant", "source", "target", "assignee"
    )
    if filters.get("plant"):
        qs = qs.filter(plant__code=filters["plant"])
    if filters.get("flow"):
        qs = qs.filter(flow__code=filters["flow"])
    if filters.get("target"):
        qs = qs.filter(target__code=filters["target"])
    state = filters.get("state")
    if state == "open":
        qs = qs.filter(state__in=DeadLetter.OPEN_STATES)
    elif state and state != "all":
        qs = qs.filter(state=state)
    if filters.get("error_class"):
        qs = qs.filter(error_class=filters["error_class"])
    if filters.get("fingerprint"):
        qs = qs.filter(fingerprint=filters["fingerprint"])
    if filters.get("age"):
        direction, span = parse_age(filters["age"])
        cutoff = now - span
        # Age counts from the first failure: ">24h" is what the exception-aging SLO counts.
        if direction == ">":
            qs = qs.filter(first_failed_at__lt=cutoff)
        else:
            qs = qs.filter(first_failed_at__gte=cutoff)
    assignee = filters.get("assignee")
    if assignee == "none":
        qs = qs.filter(assignee__isnull=True)
    elif assignee:
        qs = qs.filter(assignee__username=assignee)
    if filters.get("q"):
        q = filters["q"]
        from tracing.models import BusinessKey

        by_key = BusinessKey.objects.filter(value=q).values("transaction_id")
        qs = qs.filter(
            Q(correlation_id=q)
            | Q(external_id=q)
            | Q(transaction_id__in=by_key)
            | Q(business_key__endswith=f":{q}")
        )
    return qs.order_by("-last_failed_at", "-id")


def groups(qs, *, sort="newest", limit=200):
    """One row per fingerprint: count, open count, first/last seen, plants and flows hit."""
    rows = list(
        qs.order_by()
        .values("fingerprint")
        .annotate(
            count=Count("id"),
            open=Count("id", filter=Q(state__in=DeadLetter.OPEN_STATES)),
            superseded=Count(
                "id", filter=Q(superseded_at__isnull=False, state__in=DeadLetter.OPEN_STATES)
            ),
            first_seen=Min("first_failed_at"),
            last_seen=Max("last_failed_at"),
            sample_id=Max("id"),
        )
        .order_by("-last_seen")[:limit]
    )
    if not rows:
        return []
    prints = [r["fingerprint"] for r in rows]
    hit = defaultdict(lambda: {"plants": set(), "flows": set(), "targets": set()})
    for fp, plant, flow, target in (
        qs.order_by()
        .filter(fingerprint__in=prints)
        .values_list("fingerprint", "plant__code", "flow__code", "target__code")
        .distinct()
    ):
        hit[fp]["plants"].add(plant)
        hit[fp]["flows"].add(flow)
        if target:
            hit[fp]["targets"].add(target)
    samples = {
        d.id: d
        for d in DeadLetter.objects.filter(id__in=[r["sample_id"] for r in rows]).select_related(
            "flow", "target"
        )
    }
    from integration_hub.impact import group_impact

    impacts = group_impact(qs.filter(fingerprint__in=prints))
    for row in rows:
        sample = samples[row["sample_id"]]
        row.update(
            plants=sorted(hit[row["fingerprint"]]["plants"]),
            flows=sorted(hit[row["fingerprint"]]["flows"]),
            targets=sorted(hit[row["fingerprint"]]["targets"]),
            error={
                "class": sample.error_class,
                "code": sample.error_code,
                "message": sample.error_message,
            },
            flow_name=sample.flow.name,
            target=sample.target.code if sample.target else None,
            impact=impacts.get(row["fingerprint"], {"score": 0, "lines": [], "held": 0}),
        )
    if sort == "impact":
        rows.sort(key=lambda r: (-r["impact"]["score"], -r["last_seen"].timestamp()))
    return rows


# --- acting --------------------------------------------------------------------------------


def ensure_can_act(user):
    if not can_triage(user):
        raise NotAllowed("Only analysts and admins may act on dead letters; you may read them.")


def assignee_from(username):
    """The person a dead letter is assigned to ('' or None: nobody)."""
    if not username:
        return None
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise InvalidFilter("assignee", f"No active user {username!r}.")
    return user


def close(letters, *, state, by, reason, now=None):
    """Resolve or discard open dead letters (not those a replay holds); return how many."""
    from integration_hub.replay import release_held

    reason = (reason or "").strip()
    if not reason:
        raise InvalidFilter("reason", f"Say why they are {state}.")
    now = now or timezone.now()
    with transaction.atomic():
        rows = list(
            DeadLetter.objects.select_for_update()
            .filter(id__in=letters.values("id"), state__in=("new", "investigating"))
            .values_list("id", "state", "business_key")
        )
        ids = [i for i, _, _ in rows]
        for start in range(0, len(ids), 1000):
            DeadLetter.objects.filter(
                id__in=ids[start : start + 1000], state__in=("new", "investigating")
            ).update(state=state, closed_at=now, updated_at=now)
        DeadLetterChange.objects.bulk_create(
            [
                DeadLetterChange(
                    dead_letter_id=i,
                    at=now,
                    by=by,
                    kind="state",
                    from_state=old,
                    to_state=state,
                    text=reason,
                )  # fmt: skip
                for i, old, _ in rows
            ],
            batch_size=1000,
        )
        release_held({key for _, _, key in rows if key}, now=now)
    return len(ids)


def assign(letters, *, assignee, by, now=None):
    """Assign open dead letters to a person (or nobody); return how many."""
    now = now or timezone.now()
    with transaction.atomic():
        rows = list(
            DeadLetter.objects.select_for_update()
            .filter(id__in=letters.values("id"), state__in=DeadLetter.OPEN_STATES)
            .values_list("id", "state")
        )
        ids = [i for i, _ in rows]
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            DeadLetter.objects.filter(id__in=chunk).update(assignee=assignee, updated_at=now)
            if assignee is not None:
                DeadLetter.objects.filter(id__in=chunk, state="new").update(state="investigating")
        DeadLetterChange.objects.bulk_create(
            [
                DeadLetterChange(
                    dead_letter_id=i,
                    at=now,
                    by=by,
                    kind="assign",
                    from_state=old,
                    to_state="investigating" if old == "new" and assignee else old,
                    assignee=assignee,
                )  # fmt: skip
                for i, old in rows
            ],
            batch_size=1000,
        )
    return len(ids)


def bulk(*, action, letters, by, reason="", assignee=None, selection=None, now=None):
    """Run a bulk action on a selection; return the BulkAction (its handle to follow progress)."""
    from integration_hub.replay import replay_selection

    ensure_can_act(by)
    now = now or timezone.now()
    if action not in BULK_ACTIONS:
        raise InvalidFilter("action", f"Choose one of: {', '.join(BULK_ACTIONS)}.")
    if action == "replay":
        return replay_selection(
            dead_letters=letters, requested_by=by, reason=reason, selection=selection, now=now
        )
    if action in ("resolve", "discard"):
        touched = close(
            letters, state="resolved" if action == "resolve" else "discarded", by=by,
            reason=reason, now=now,
        )  # fmt: skip
    else:
        touched = assign(letters, assignee=assignee, by=by, now=now)
    return BulkAction.objects.create(
        action=action, requested_by=by, requested_at=now, selection=selection or {},
        reason=reason, touched=touched,
    )  # fmt: skip


def preview_count(*, action, letters):
    """How many dead letters a bulk action would touch (for the confirmation), and why not."""
    open_letters = letters.filter(state__in=("new", "investigating"))
    if action == "replay":
        open_count = open_letters.count()
        superseded = open_letters.filter(superseded_at__isnull=False).count()
        no_endpoint = (
            open_letters.filter(superseded_at__isnull=True)
            .filter(Q(target__isnull=True) | Q(target__replay_url=""))
            .count()
        )
        return {
            "touch": open_count - superseded - no_endpoint,
            "superseded": superseded,
            "no_replay_endpoint": no_endpoint,
            "not_open": letters.count() - open_count,
        }
    if action == "assign":
        touch = letters.filter(state__in=DeadLetter.OPEN_STATES).count()
    else:
        touch = open_letters.count()
    return {"touch": touch, "not_open": letters.count() - touch}
