"""Alert evaluation: rules → conditions → alerts (fired, repeated, resolved) → deliveries.

`evaluate_alerts(now)` is what beat runs every ALERT_EVALUATION_SECONDS. Each rule kind reads
its figures with one aggregate query; the lifecycle is the same for all of them:

- a condition with no firing alert for its dedupe key fires a new alert (one notice);
- while it holds, the alert notifies again only after the rule's repeat interval;
- when it stops holding, the alert waits the hold-down (resolve_after) and resolves (one
  notice) only if the condition stayed clear all that time, so a flapping figure does not
  send a storm;
- a muted rule keeps its alerts up to date but sends no fired/repeat notices; the first notice
  goes out when the mute ends if the alert still fires. Resolved notices are sent for alerts
  that were announced, muted or not, so no receiver is left with an open incident.
"""

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Max, Min, Q
from django.utils import timezone

from integration_hub.models import DeadLetter
from monitoring.models import (
    SEVERITY_RANK,
    Alert,
    AlertChannel,
    AlertRule,
    AlertTransition,
    Delivery,
    SLOStatus,
    Watermark,
)
from monitoring.slo import PAGE_RULES, TICKET_RULES
from tracing.models import TraceEvent, Transaction, TransactionState

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


# --- Conditions, one function per rule kind -------------------------------------------------


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


def open_dead_letter_conditions(rule, now, ctx):
    """Per plant: open dead letters above N."""
    rows = (
        _scoped(DeadLetter.objects.exclude(state__in=DeadLetter.CLOSED_STATES), rule)
        .values("plant_id")
        .annotate(count=Count("id"), since=Min("created_at"))
        .order_by()
    )
    return [
        Condition(
            key=dedupe_key(rule, row["plant_id"], rule.flow_id),
            summary=(
                f"{row['count']} open dead letters at {ctx.plant_code(row['plant_id'])}"
                + (f" in {ctx.flow_code(rule.flow_id)}" if rule.flow_id else "")
            ),
            value=row["count"],
            threshold=rule.threshold_count,
            unit="open dead letters",
            since=row["since"],
            plant_id=row["plant_id"],
            flow_id=rule.flow_id,
        )
        for row in rows
        if row["count"] > rule.threshold_count
    ]


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
    for rule in rules:
        seen = [
            at
            for (source, plant), at in latest.items()
            if source == rule.system_id and (rule.plant_id is None or plant == rule.plant_id)
        ]
        last = max(seen, default=None)
        if last is not None and (now - last).total_seconds() <= rule.threshold_seconds:
            found[rule.id] = []
            continue
        key = dedupe_key(rule, rule.plant_id, rule.system_id)
        if last is None:
            last = ctx.firing_since(key) or _last_event(rule, now)
        where = f" at {ctx.plant_code(rule.plant_id)}" if rule.plant_id else ""
        quiet = (now - last).total_seconds() if last else None
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
        from integration_hub.models import Flow, Plant, System

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


# --- Lifecycle --------------------------------------------------------------------------------


def conditions_for(rules, now, ctx):
    """{rule id: [Condition]} for the given enabled rules."""
    found = silence_conditions([r for r in rules if r.kind == Kind.SILENCE], now, ctx)
    for rule in rules:
        if rule.kind != Kind.SILENCE:
            found[rule.id] = CONDITIONS[rule.kind](rule, now, ctx)
    return found


def evaluate_alerts(now=None):
    """One evaluation of every rule: fire, repeat, hold down and resolve; queue deliveries.

    Serialised by a row lock (PostgreSQL) or the write lock (SQLite), so two overlapping beat
    runs cannot fire the same alert twice; the partial unique index on firing dedupe keys
    backs that up. Deliveries are enqueued after commit. Returns counts of what changed.
    """
    now = now or timezone.now()
    with transaction.atomic():
        Watermark.objects.get_or_create(name="alerts", defaults={"at": now})
        Watermark.objects.select_for_update().filter(name="alerts").update(at=now)
        rules = list(AlertRule.objects.filter(enabled=True))
        by_id = {r.id: r for r in rules}
        firing = {a.dedupe_key: a for a in Alert.objects.filter(state=Alert.State.FIRING)}
        ctx = Context(firing)
        found = conditions_for(rules, now, ctx)
        transitions, counts = [], {"fired": 0, "repeated": 0, "resolved": 0, "held": 0}
        for rule in rules:
            for cond in found[rule.id]:
                alert = firing.pop(cond.key, None)
                if alert is None:
                    alert = _fire(rule, cond, now)
                    counts["fired"] += 1
                else:
                    _refresh(alert, rule, cond, now)
                transition = _notice_while_firing(alert, rule, now)
                if transition is not None:
                    counts["repeated"] += transition.kind == AlertTransition.Kind.REPEAT
                    transitions.append(transition)
        for alert in firing.values():  # condition no longer holds (or the rule is gone)
            rule = by_id.get(alert.rule_id)
            hold = timedelta(seconds=rule.resolve_after_seconds) if rule else timedelta(0)
            if alert.clear_since is None and hold:
                alert.clear_since = now
                alert.save(update_fields=["clear_since"])
                counts["held"] += 1
            elif now - (alert.clear_since or now) >= hold:
                transition = _resolve(alert, now)
                counts["resolved"] += 1
                if transition is not None:
                    transitions.append(transition)
            else:
                counts["held"] += 1
        deliveries = create_deliveries(transitions, now)
    if deliveries:
        ids = [d.id for d in deliveries]
        transaction.on_commit(lambda: enqueue(ids))
    counts["deliveries"] = len(deliveries)
    counts["evaluated_at"] = now.isoformat()
    return counts


def _fire(rule, cond, now):
    return Alert.objects.create(
        rule=rule,
        rule_name=rule.name,
        rule_kind=rule.kind,
        dedupe_key=cond.key,
        severity=rule.severity,
        plant_id=cond.plant_id,
        flow_id=cond.flow_id,
        system_id=cond.system_id,
        subject=cond.subject,
        summary=cond.summary,
        figures=cond.figures,
        since=cond.since or now,
        fired_at=now,
        last_true_at=now,
    )


def _refresh(alert, rule, cond, now):
    alert.summary, alert.figures, alert.last_true_at = cond.summary, cond.figures, now
    alert.severity, alert.clear_since = rule.severity, None
    if cond.since and cond.since < alert.since:
        alert.since = cond.since
    alert.save(
        update_fields=["summary", "figures", "last_true_at", "severity", "clear_since", "since"]
    )


def _notice_while_firing(alert, rule, now):
    """The fired notice (first time, or when a mute ends) or a repeat once the interval passed."""
    if rule.is_muted(now):
        return None
    if not alert.announced:
        kind, number = AlertTransition.Kind.FIRED, 0
    elif now - alert.last_notified_at >= timedelta(seconds=rule.repeat_interval_seconds):
        kind, number = AlertTransition.Kind.REPEAT, alert.repeats + 1
        alert.repeats = number
    else:
        return None
    alert.announced, alert.last_notified_at = True, now
    alert.save(update_fields=["announced", "last_notified_at", "repeats"])
    return AlertTransition.objects.create(
        alert=alert, kind=kind, number=number, at=now, summary=alert.summary, figures=alert.figures
    )


def _resolve(alert, now):
    alert.state, alert.resolved_at = Alert.State.RESOLVED, now
    alert.save(update_fields=["state", "resolved_at"])
    if not alert.announced:
        return None
    return AlertTransition.objects.create(
        alert=alert,
        kind=AlertTransition.Kind.RESOLVED,
        at=now,
        summary=f"Resolved: {alert.summary}",
        figures=alert.figures,
    )


# --- Routing and deliveries ------------------------------------------------------------------


def routes(channel, alert):
    """Whether a channel subscribes to this alert: plants, flows and minimum severity.

    A channel limited to plants (flows) gets only alerts of those plants (flows); an alert that
    spans all plants (a system-wide silence) goes only to channels without a plant filter.
    """
    if SEVERITY_RANK[alert.severity] < SEVERITY_RANK[channel.min_severity]:
        return False
    plants = {p.id for p in channel.plants.all()}
    flows = {f.id for f in channel.flows.all()}
    if plants and alert.plant_id not in plants:
        return False
    return not (flows and alert.flow_id not in flows)


def create_deliveries(transitions, now):
    """One pending delivery per (transition, subscribed channel); the unique constraint makes a
    second attempt to queue the same transition a no-op."""
    if not transitions:
        return []
    from monitoring.channels import payload_for, target_of

    channels = list(AlertChannel.objects.filter(enabled=True).prefetch_related("plants", "flows"))
    rows = []
    for transition in transitions:
        alert = transition.alert
        for channel in channels:
            if routes(channel, alert):
                rows.append(
                    Delivery(
                        alert=alert,
                        transition=transition,
                        channel=channel,
                        message_id=new_message_id(),
                        target=target_of(channel),
                        payload=payload_for(channel, alert, transition),
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
    Delivery.objects.bulk_create(rows, ignore_conflicts=True)
    return list(Delivery.objects.filter(message_id__in=[r.message_id for r in rows]).only("id"))


def new_message_id():
    return f"msg_{uuid.uuid4().hex}"


def queue_test_delivery(channel, now=None):
    """A test notice for a channel (admin/API "send test"): a delivery row, sent by a worker."""
    from monitoring.channels import target_of, test_payload

    now = now or timezone.now()
    delivery = Delivery.objects.create(
        channel=channel,
        is_test=True,
        message_id=new_message_id(),
        target=target_of(channel),
        payload=test_payload(channel, now),
        next_attempt_at=now,
        created_at=now,
    )
    transaction.on_commit(lambda: enqueue([delivery.id]))
    return delivery


def enqueue(ids, countdown=None):
    """Hand delivery ids to the sending task (on ALERT_DELIVERY_QUEUE when set)."""
    from monitoring.tasks import send_deliveries

    options = {"queue": settings.ALERT_DELIVERY_QUEUE} if settings.ALERT_DELIVERY_QUEUE else {}
    if countdown:
        options["countdown"] = countdown
    send_deliveries.apply_async(args=[list(ids)], **options)


# --- Sending: claim under a lease, send, record; recover expired leases ----------------------


def backoff(attempts):
    """Seconds before the next attempt: 10, 20, 40 … capped at 10 minutes."""
    return min(10 * 2 ** max(attempts - 1, 0), 600)


def claim(delivery_id, now):
    """Take a delivery for sending: pending, or sending under a lease that expired.

    One conditional UPDATE, so of two workers holding the same id only one gets it.
    """
    lease = timedelta(seconds=settings.ALERT_DELIVERY_LEASE_SECONDS)
    claimable = Q(state=Delivery.State.PENDING) | Q(
        state=Delivery.State.SENDING, lease_until__lt=now
    )
    return (
        Delivery.objects.filter(claimable, id=delivery_id).update(
            state=Delivery.State.SENDING, lease_until=now + lease, attempts=F("attempts") + 1
        )
        == 1
    )


def deliver(delivery_id, now=None):
    """Claim, send and record one delivery. Returns its state afterwards, or None if another
    worker holds it or it is already done.

    A transient failure leaves it pending with a backoff (and re-enqueues it) until the
    channel's max_attempts; a permanent one fails it at once. The webhook-id is the row's
    message_id, the same on every attempt, so a receiver can drop a repeat of a notice that
    reached it before the sender could record it (a worker killed mid-request).
    """
    from monitoring import channels

    now = now or timezone.now()
    if not claim(delivery_id, now):
        return None
    delivery = Delivery.objects.select_related("channel").get(id=delivery_id)
    mine = Delivery.objects.filter(
        id=delivery_id, state=Delivery.State.SENDING, attempts=delivery.attempts
    )
    try:
        channels.send(delivery)
    except channels.ChannelError as exc:
        error, permanent, status = str(exc), exc.permanent, exc.status
    except Exception as exc:  # a bug in a channel must not wedge the row; retry, then fail
        error, permanent, status = f"{type(exc).__name__}: {exc}", False, None
    else:
        mine.update(
            state=Delivery.State.SENT,
            sent_at=now,
            lease_until=None,
            response_status=delivery.response_status,
            last_error="",
        )
        return Delivery.State.SENT
    if permanent or delivery.attempts >= delivery.channel.max_attempts:
        mine.update(
            state=Delivery.State.FAILED, lease_until=None, last_error=error, response_status=status
        )
        return Delivery.State.FAILED
    wait = backoff(delivery.attempts)
    if mine.update(
        state=Delivery.State.PENDING,
        lease_until=None,
        next_attempt_at=now + timedelta(seconds=wait),
        last_error=error,
        response_status=status,
    ):
        enqueue([delivery_id], countdown=wait)
    return Delivery.State.PENDING


def requeue_deliveries(now=None, *, batch=500):
    """Beat: hand deliveries back to workers when their worker died (lease expired) or their
    message was lost (pending and due for a while). Returns the ids enqueued."""
    now = now or timezone.now()
    expired = list(
        Delivery.objects.filter(state=Delivery.State.SENDING, lease_until__lt=now).values_list(
            "id", flat=True
        )[:batch]
    )
    if expired:
        Delivery.objects.filter(
            id__in=expired, state=Delivery.State.SENDING, lease_until__lt=now
        ).update(state=Delivery.State.PENDING, lease_until=None)
    grace = timedelta(seconds=settings.ALERT_DELIVERY_LEASE_SECONDS)
    due = list(
        Delivery.objects.filter(state=Delivery.State.PENDING, next_attempt_at__lte=now - grace)
        .exclude(id__in=expired)
        .values_list("id", flat=True)[:batch]
    )
    ids = expired + due
    if ids:
        enqueue(ids)
    return ids
