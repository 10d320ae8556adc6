"""Finding dead letters: filters, the per-plant list, and groups by cause (ranked by impact).

Reads (`dead_letters`, `groups`) are shared by pages and API; both start from
DeadLetter.objects.for_user, so nobody sees another plant's messages.
"""

import re
from collections import defaultdict
from datetime import timedelta

from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from integration_hub.models import Flow, Plant, System
from monitoring.triage.impact import group_impact
from tracing.ingest.contract import ERROR_CLASSES
from tracing.models import BusinessKey, DeadLetter, DeadLetterState

FILTERS = (
    "plant", "flow", "target", "state", "error_class", "fingerprint", "age", "assignee", "q",
)  # fmt: skip


STATE_CHOICES = ("open", "all", *DeadLetterState.values)


AGES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}


AGE_RE = re.compile(r"^([<>]?)(\d{1,4})([mhd])$")


class InvalidFilter(ValueError):
    """A filter value that cannot be used; `field` names it."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field


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
        by_key = BusinessKey.objects.filter(value=q).values("transaction_id")
        qs = qs.filter(
            Q(correlation_id=q)
            | Q(external_id=q)
            | Q(transaction_id__in=by_key)
            | Q(business_key__endswith=f":{q}")
        )
    return qs.order_by("-last_failed_at", "-id")


def groups(qs, *, sort="newest", limit=200):
    """One row per fingerprint: count, open count, first/last seen, plants and flows hit.

    By impact, every group is ranked first and then cut to `limit` (the impact of all groups
    comes from one aggregate), so a group with old letters but the most held work still leads.
    """
    rows = (
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
        .order_by("-last_seen")
    )
    if sort == "impact":
        impacts = group_impact(qs)
        rows = sorted(rows, key=lambda r: _impact_rank(r, impacts))[:limit]
    else:
        rows = list(rows[:limit])
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
    if sort != "impact":
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
    return rows


def _impact_rank(row, impacts):
    """Most impact first; among equals, the most recently failing."""
    score = impacts.get(row["fingerprint"], {}).get("score", 0)
    return (-score, -row["last_seen"].timestamp())
