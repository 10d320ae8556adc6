"""Alert lifecycle: fire once, repeat while firing, resolve; each change is a transition."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from monitoring.alerts import delivery
from monitoring.alerts.conditions import CONDITIONS, Context, Kind, silence_conditions
from monitoring.models import Alert, AlertRule, AlertTransition, Watermark


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
        rules = list(AlertRule.objects.filter(enabled=True).select_related("plant"))
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
        deliveries = delivery.create_deliveries(transitions, now)
    if deliveries:
        ids = [d.id for d in deliveries]
        transaction.on_commit(lambda: delivery.enqueue(ids))
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
