"""Alert conditions, one function per rule kind: what is wrong right now, and where."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Max, Min, Q

from integration_hub.calendars import NO_DOWNTIME, Calendar, shift_at
from integration_hub.models import Flow, Plant, System
from monitoring.models import AlertRule, ReconciliationException, SLOStatus
from monitoring.slo.figures import PAGE_RULES, TICKET_RULES
from tracing.models import DeadLetter, TraceEvent, Transaction, TransactionState

Kind = AlertRule.Kind


DEFAULT_NEW_GROUP_WINDOW = timedelta(hours=1)


SILENCE_LOOKBACK = timedelta(days=7)


@dataclass
class Condition:
    """A rule's condition holding for one scope, with the figures a notice shows."""

    key: str
    summary: str
    value: float
    threshold: float
    unit: str
    since: datetime | None = None
    plant_id: int | None = None
    flow_id: int | None = None
    system_id: int | None = None
    subject: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def figures(self):
        return {"value": self.value, "threshold": self.threshold, "unit": self.unit, **self.extra}


def dedupe_key(rule, *parts):
    return ":".join([str(rule.id), *(str(p) if p is not None else "*" for p in parts)])


def _scoped(qs, rule, plant="plant_id", flow="flow_id"):
    if rule.plant_id:
        qs = qs.filter(**{plant: rule.plant_id})
    if rule.flow_id and flow:
        qs = qs.filter(**{flow: rule.flow_id})
    return qs


def slo_burn_conditions(rule, now, ctx):
    """Per plant: the multiwindow burn-rate pairs of the SLO status snapshots (page or ticket)."""
    pairs = PAGE_RULES if rule.kind == Kind.SLO_FAST_BURN else TICKET_RULES
    conditions = []
    for status in ctx.slo_statuses():
        slo = status.slo
        if rule.slo_id and slo.id != rule.slo_id:
            continue
        if rule.plant_id and status.plant_id != rule.plant_id:
            continue
        if rule.flow_id and slo.flow_id != rule.flow_id:
            continue
        rates = status.burn_rates or {}
        firing = [
            (long, short, limit)
            for long, short, limit in pairs
            if rates.get(long, 0) > limit and rates.get(short, 0) > limit
        ]
        if not firing:
            continue
        long, short, limit = firing[0]
        speed = "fast" if rule.kind == Kind.SLO_FAST_BURN else "slow"
        conditions.append(
            Condition(
                key=dedupe_key(rule, status.plant_id, slo.slug),
                summary=(
                    f"{slo.name}: error budget burning {speed} — {rates[long]:g}× over {long} "
                    f"and {rates[short]:g}× over {short} (limit {limit:g}×)"
                ),
                value=rates[long],
                threshold=limit,
                unit=f"× burn rate ({long})",
                plant_id=status.plant_id,
                flow_id=slo.flow_id,
                subject=slo.slug,
                extra={
                    "burn_rates": rates,
                    "attainment": status.attainment,
                    "error_budget_remaining": status.error_budget_remaining,
                },
            )
        )
    return conditions


def stuck_conditions(rule, now, ctx):
    """Per flow and plant: stuck count above N, or the oldest stuck one older than T."""
    rows = (
        _scoped(Transaction.objects.in_state(TransactionState.STUCK, now), rule)
        .values("flow_id", "plant_id")
        .annotate(count=Count("id"), oldest=Min("first_seen"), since=Min("stuck_at"))
        .order_by()
    )
    count_above = rule.threshold_count
    if count_above is None and not rule.threshold_seconds:
        count_above = 0
    conditions = []
    for row in rows:
        age = (now - row["oldest"]).total_seconds()
        by_count = count_above is not None and row["count"] > count_above
        by_age = bool(rule.threshold_seconds) and age > rule.threshold_seconds
        if not (by_count or by_age):
            continue
        flow, plant = ctx.flow_code(row["flow_id"]), ctx.plant_code(row["plant_id"])
        summary = f"{row['count']} stuck {flow} transactions at {plant}"
        summary += f", the oldest open for {_duration(age)}"
        if by_count:
            value, threshold, unit = row["count"], count_above, "stuck transactions"
        else:
            value, threshold, unit = round(age), rule.threshold_seconds, "seconds (oldest)"
        conditions.append(
            Condition(
                key=dedupe_key(rule, row["plant_id"], row["flow_id"]),
                summary=summary,
                value=value,
                threshold=threshold,
                unit=unit,
                since=min(row["since"], now) if row["since"] else None,
                plant_id=row["plant_id"],
                flow_id=row["flow_id"],
                extra={"stuck": row["count"], "oldest_age_seconds": round(age)},
            )
        )
    return conditions


def _open_above(rule, ctx, qs, since, noun):
    """Per plant: open items above N."""
    rows = _scoped(qs, rule).values("plant_id").annotate(count=Count("id"), since=Min(since))
    return [
        Condition(
            key=dedupe_key(rule, row["plant_id"], rule.flow_id),
            summary=(
                f"{row['count']} {noun} at {ctx.plant_code(row['plant_id'])}"
                + (f" in {ctx.flow_code(rule.flow_id)}" if rule.flow_id else "")
            ),
            value=row["count"],
            threshold=rule.threshold_count,
            unit=noun,
            since=row["since"],
            plant_id=row["plant_id"],
            flow_id=rule.flow_id,
        )
        for row in rows.order_by()
        if row["count"] > rule.threshold_count
    ]


def open_dead_letter_conditions(rule, now, ctx):
    """Per plant: open dead letters above N."""
    qs = DeadLetter.objects.exclude(state__in=DeadLetter.CLOSED_STATES)
    return _open_above(rule, ctx, qs, "created_at", "open dead letters")


def reconciliation_conditions(rule, now, ctx):
    """Per plant: open reconciliation exceptions (systems that disagree) above N."""
    qs = ReconciliationException.objects.open()
    return _open_above(rule, ctx, qs, "since", "open reconciliation exceptions")


def new_group_conditions(rule, now, ctx):
    """Per fingerprint and plant: a group first seen within T that still has open letters.

    A group that fired keeps firing until its letters are closed, however old it gets.
    """
    window = timedelta(seconds=rule.threshold_seconds) if rule.threshold_seconds else None
    window = window or DEFAULT_NEW_GROUP_WINDOW
    firing = ctx.firing_keys(rule)
    rows = (
        _scoped(DeadLetter.objects.all(), rule)
        .values("fingerprint", "plant_id")
        .annotate(
            first=Min("created_at"),
            open=Count("id", filter=~Q(state__in=DeadLetter.CLOSED_STATES)),
            sample=Max("id"),
        )
        .filter(open__gt=0)
        .order_by()
    )
    candidates = []
    for row in rows:
        key = dedupe_key(rule, row["plant_id"], row["fingerprint"])
        if row["first"] >= now - window or key in firing:
            candidates.append((key, row))
    samples = DeadLetter.objects.in_bulk([row["sample"] for _, row in candidates])
    conditions = []
    for key, row in candidates:
        sample = samples[row["sample"]]
        target = ctx.system_code(sample.target_id) or "?"
        conditions.append(
            Condition(
                key=key,
                summary=(
                    f"New dead-letter group at {ctx.plant_code(row['plant_id'])}: "
                    f"{ctx.flow_code(sample.flow_id)} → {target}, {sample.error_class}"
                    f" {sample.error_code}: {sample.error_message[:200]}"
                ),
                value=row["open"],
                threshold=0,
                unit="open dead letters in the group",
                since=row["first"],
                plant_id=row["plant_id"],
                flow_id=sample.flow_id,
                subject=row["fingerprint"],
            )
        )
    return conditions


def growth_conditions(rule, now, ctx):
    """Per fingerprint and plant: more than N new dead letters within T."""
    rows = (
        _scoped(
            DeadLetter.objects.filter(
                created_at__gt=now - timedelta(seconds=rule.threshold_seconds),
                created_at__lte=now,
            ),
            rule,
        )
        .values("fingerprint", "plant_id")
        .annotate(count=Count("id"), since=Min("created_at"), flow=Min("flow_id"))
        .filter(count__gt=rule.threshold_count)
        .order_by()
    )
    return [
        Condition(
            key=dedupe_key(rule, row["plant_id"], row["fingerprint"]),
            summary=(
                f"Dead-letter group {row['fingerprint'][:12]} at {ctx.plant_code(row['plant_id'])}"
                f" grew by {row['count']} in {_duration(rule.threshold_seconds)}"
            ),
            value=row["count"],
            threshold=rule.threshold_count,
            unit=f"new dead letters in {_duration(rule.threshold_seconds)}",
            since=row["since"],
            plant_id=row["plant_id"],
            flow_id=row["flow"],
            subject=row["fingerprint"],
        )
        for row in rows
    ]


def silence_conditions(rules, now, ctx):
    """{rule id: [Condition]} for every silence rule, from one aggregate over recent events.

    Reads Max(received_at) grouped by (source, plant) over the longest silence window; a scope
    with no event in that window is silent, and its last event is looked up (bounded) only then.
    """
    if not rules:
        return {}
    longest = max(r.threshold_seconds for r in rules)
    latest = {
        (row["source_id"], row["plant_id"]): row["last"]
        for row in TraceEvent.objects.filter(
            source_id__in={r.system_id for r in rules},
            received_at__gt=now - timedelta(seconds=longest),
            received_at__lte=now,
        )
        .values("source_id", "plant_id")
        .annotate(last=Max("received_at"))
        .order_by()
    }
    found = {}
    calendar = Calendar(now - SILENCE_LOOKBACK, now, {r.plant_id for r in rules if r.plant_id})
    for rule in rules:
        # A plant's planned downtime stops the clock (and out of shift, when the rule says so).
        windows = calendar.windows(rule.plant_id) if rule.plant_id else NO_DOWNTIME
        if windows.covers(now) or (rule.only_in_shifts and not _in_shift(rule, now)):
            found[rule.id] = []
            continue
        seen = [
            at
            for (source, plant), at in latest.items()
            if source == rule.system_id and (rule.plant_id is None or plant == rule.plant_id)
        ]
        last = max(seen, default=None)
        key = dedupe_key(rule, rule.plant_id, rule.system_id)
        if last is None:
            last = ctx.firing_since(key) or _last_event(rule, now)
            if (
                last is not None
                and windows
                and windows.elapsed(last, now) <= rule.threshold_seconds
            ):
                last = None  # quiet for long, but mostly in planned downtime: not silent
                found[rule.id] = []
                continue
        elif windows.elapsed(last, now) <= rule.threshold_seconds:
            found[rule.id] = []
            continue
        where = f" at {ctx.plant_code(rule.plant_id)}" if rule.plant_id else ""
        quiet = windows.elapsed(last, now) if last else None
        summary = f"{ctx.system_code(rule.system_id)} sent no event{where} for " + (
            _duration(quiet) if quiet is not None else f"over {_duration(SILENCE_LOOKBACK)}"
        )
        found[rule.id] = [
            Condition(
                key=key,
                summary=summary,
                value=round(quiet) if quiet is not None else None,
                threshold=rule.threshold_seconds,
                unit="seconds without an event",
                since=last,
                plant_id=rule.plant_id,
                system_id=rule.system_id,
                extra={"last_event_at": last.isoformat() if last else None},
            )
        ]
    return found


def _in_shift(rule, now):
    return rule.plant is None or shift_at(rule.plant, now) is not None


def _last_event(rule, now):
    qs = TraceEvent.objects.filter(
        source_id=rule.system_id, received_at__gt=now - SILENCE_LOOKBACK, received_at__lte=now
    )
    if rule.plant_id:
        qs = qs.filter(plant_id=rule.plant_id)
    return qs.aggregate(last=Max("received_at"))["last"]


CONDITIONS = {
    Kind.SLO_FAST_BURN: slo_burn_conditions,
    Kind.SLO_SLOW_BURN: slo_burn_conditions,
    Kind.STUCK: stuck_conditions,
    Kind.DEAD_LETTERS_OPEN: open_dead_letter_conditions,
    Kind.DEAD_LETTER_NEW_GROUP: new_group_conditions,
    Kind.DEAD_LETTER_GROWTH: growth_conditions,
    Kind.RECONCILIATION: reconciliation_conditions,
}


def _duration(seconds):
    if isinstance(seconds, timedelta):
        seconds = seconds.total_seconds()
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"


class Context:
    """Catalog names and firing alerts, loaded once per evaluation."""

    def __init__(self, firing):
        self.plants = dict(Plant.objects.values_list("id", "code"))
        self.flows = dict(Flow.objects.values_list("id", "code"))
        self.systems = dict(System.objects.values_list("id", "code"))
        self.firing = firing
        self._statuses = None

    def plant_code(self, pk):
        return self.plants.get(pk, "all plants")

    def flow_code(self, pk):
        return self.flows.get(pk, "")

    def system_code(self, pk):
        return self.systems.get(pk, "")

    def firing_keys(self, rule):
        return {key for key, alert in self.firing.items() if alert.rule_id == rule.id}

    def firing_since(self, key):
        alert = self.firing.get(key)
        return alert.since if alert else None

    def slo_statuses(self):
        if self._statuses is None:
            self._statuses = list(
                SLOStatus.objects.filter(plant__isnull=False, slo__enabled=True).select_related(
                    "slo"
                )
            )
        return self._statuses
