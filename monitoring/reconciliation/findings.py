"""What reconciliation finds: transactions whose systems disagree, past their tolerance.

Fan-out: a flow's fan-out milestone reached some of its target systems and not the others for
longer than the flow's `reconcile_after`. Agreement: an admin's rule (a lot released in QMS
must be released in WMS within 15 min) not met by any transaction sharing the business key.
Both count only time outside the plant's planned downtime for the flow, like every clock here.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, F, OuterRef
from django.db.models.fields.json import HasKey, KeyTextTransform, KeyTransform

from integration_hub.models import Flow, System
from monitoring.models import AgreementRule
from tracing.ingest import correlate
from tracing.ingest.correlate import targets_reached
from tracing.models import BusinessKey, Transaction

# What reconciliation reads of a transaction (not the error, counts or stuck deadline).
READ = (
    "id", "plant_id", "flow_id", "correlation_id", "business_keys", "milestones",
    "milestone_systems", "partial_since",
)  # fmt: skip
# Business keys that name a transaction to a person, most telling first.
KEY_ORDER = ("lot", "order", "shipment", "handling_unit", "serial", "material")


@dataclass
class Finding:
    rule: str
    kind: str
    txn: Transaction
    milestone: str
    since: datetime
    reached: list
    missing: list
    summary: str
    states: dict = field(default_factory=dict)
    agreement: AgreementRule | None = None


def named(keys):
    """'lot L-26-737953' for a transaction's business keys (the most telling one)."""
    for name in (*KEY_ORDER, *sorted(keys)):
        if name in keys:
            return f"{name} {keys[name]}"
    return ""


def and_list(items):
    items = list(items)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _minutes(delta):
    minutes = round(delta.total_seconds() / 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes / 60:g} h"


# ── Fan-out ────────────────────────────────────────────────────────────────────────────────


def fan_out_flows():
    flows = Flow.objects.prefetch_related("target_systems").select_related("source_system")
    return {f.id: f for f in flows if f.fan_out_milestones and f.target_systems.all()}


def fan_out_findings(now, calendar, codes, also=()):
    """Findings for every transaction whose fan-out is partial now (and those in `also`, the
    transactions of open exceptions, so that they can be seen to close)."""
    flows = fan_out_flows()
    if not flows:
        return []
    shortest = min(f.reconcile_after for f in flows.values())
    rows = Transaction.objects.filter(flow_id__in=flows, partial_since__lte=now - shortest)
    txns = {t.id: t for t in rows.select_related("flow")}
    txns.update({t.id: t for t in Transaction.objects.filter(id__in=set(also) - set(txns))})
    found = []
    for txn in txns.values():
        flow = flows.get(txn.flow_id)
        if flow is None:
            continue
        targets = sorted((s.id for s in flow.target_systems.all()), key=codes.get)
        windows = calendar.windows(txn.plant_id, txn.flow_id)
        for milestone in flow.fan_out_milestones:
            reached = targets_reached(txn, milestone, targets)
            if not reached or len(reached) == len(targets):
                continue
            since = min(reached.values())
            if windows.deadline(since, flow.reconcile_after.total_seconds()) > now:
                continue
            got = [codes[t] for t in targets if t in reached]
            missing = [codes[t] for t in targets if t not in reached]
            origin = flow.source_system.code if flow.source_system else txn.flow.code
            found.append(
                Finding(
                    rule=f"fan_out:{flow.code}:{milestone}",
                    kind="fan_out",
                    txn=txn,
                    milestone=milestone,
                    since=since,
                    reached=got,
                    missing=missing,
                    summary=(
                        f"{flow.name} for {named(txn.business_keys) or txn.correlation_id} "
                        f"from {origin}: {milestone} reached {and_list(got)}, "
                        f"never {and_list(missing)}"
                    ),
                )
            )
    return found


# ── Agreement rules ────────────────────────────────────────────────────────────────────────


def reached_at(txn, milestone, system_id=None):
    """When the transaction first reached the milestone (at that system, if given)."""
    if system_id is None:
        return correlate.reached_at(txn, milestone)
    return correlate.targets_reached(txn, milestone, [system_id]).get(system_id)


def last_state(txn, milestones, system_id):
    """The furthest milestone this system reached in the transaction, or None."""
    reached = [m for m in milestones if str(system_id) in txn.milestone_systems.get(m, {})]
    return reached[-1] if reached else None


def agreement_findings(rule, now, calendar, codes, also=()):
    """Findings of one rule: its trigger reached, past `within`, and no transaction of the
    expected flow with the same key value has reached the expected milestone. Looks at
    triggers of the last RECONCILIATION_LOOKBACK_HOURS (and the transactions in `also`)."""
    txns = {t.id: t for t in candidates(rule, now).only(*READ)}
    txns.update(
        {t.id: t for t in Transaction.objects.filter(id__in=set(also) - set(txns)).only(*READ)}
    )
    due = []
    for txn in txns.values():
        start = reached_at(txn, rule.when_milestone, rule.when_system_id)
        value = txn.business_keys.get(rule.key)
        if start is None or value is None:
            continue
        windows = calendar.windows(txn.plant_id, txn.flow_id)
        if windows.deadline(start, rule.within.total_seconds()) <= now:
            due.append((txn, start, value))
    expected = _expected(rule, due)
    found = []
    for txn, start, value in due:
        if rule.then_flow_id == rule.when_flow_id:
            others = [txn]  # the transaction's own systems must agree
        else:
            others = expected.get((txn.plant_id, value), [])
        if any(reached_at(o, rule.then_milestone, rule.then_system_id) for o in others):
            continue
        found.append(_agreement_finding(rule, txn, start, value, others, codes))
    return found


def candidates(rule, now):
    """The transactions that may break the rule now, narrowed in SQL so that a pass reads what
    disagrees, not every transaction of the lookback: the trigger reached and the key present,
    old enough to be due (a deadline is `within` past the trigger at the earliest, and the
    trigger came no earlier than first_seen), and not already met. The Python checks after
    this decide; this only leaves out transactions they would leave out too."""
    lookback = timedelta(hours=settings.RECONCILIATION_LOOKBACK_HOURS)
    rows = Transaction.objects.filter(
        _reached("", rule.when_milestone, rule.when_system_id),
        HasKey(F("business_keys"), rule.key),
        flow_id=rule.when_flow_id,
        last_seen__gte=now - rule.within - lookback,
        first_seen__lte=now - rule.within,
    )
    if rule.plant_id:
        rows = rows.filter(plant_id=rule.plant_id)
    if rule.then_flow_id == rule.when_flow_id:
        return rows.exclude(_reached("", rule.then_milestone, rule.then_system_id))
    met = BusinessKey.objects.filter(
        _reached("transaction__", rule.then_milestone, rule.then_system_id),
        name=rule.key,
        value=KeyTextTransform(rule.key, OuterRef("business_keys")),
        transaction__flow_id=rule.then_flow_id,
        transaction__plant_id=OuterRef("plant_id"),
    )
    return rows.exclude(Exists(met))


def _reached(path, milestone, system_id=None):
    """SQL for what reached_at reads: the milestone reached (at that system, if given)."""
    if system_id is None:
        return HasKey(F(f"{path}milestones"), milestone)
    return HasKey(KeyTransform(milestone, F(f"{path}milestone_systems")), str(system_id))


def _expected(rule, due):
    """(plant id, key value) → transactions of the expected flow carrying that value."""
    if rule.then_flow_id == rule.when_flow_id or not due:
        return {}
    values = sorted({value for _, _, value in due})
    by_value = {}
    for start in range(0, len(values), 1000):
        keys = (
            BusinessKey.objects.filter(
                name=rule.key,
                value__in=values[start : start + 1000],
                transaction__flow_id=rule.then_flow_id,
                transaction__plant_id__in={txn.plant_id for txn, _, _ in due},
            )
            .select_related("transaction")
            .only("value", *(f"transaction__{name}" for name in READ))
        )
        for key in keys:
            by_value.setdefault((key.transaction.plant_id, key.value), []).append(key.transaction)
    return by_value


def _agreement_finding(rule, txn, start, value, others, codes):
    when_where = codes.get(rule.when_system_id) or rule.when_flow.code
    then_where = codes.get(rule.then_system_id) or rule.then_flow.code
    states = {when_where: rule.when_milestone}
    if rule.then_system_id:
        milestones = rule.then_flow.milestones
        furthest = [last_state(o, milestones, rule.then_system_id) for o in others]
        furthest = [m for m in furthest if m]
        states[then_where] = max(furthest, key=milestones.index) if furthest else "nothing"
    else:
        states[then_where] = f"no {rule.then_milestone}"
    still = states[then_where]
    return Finding(
        rule=rule.slug,
        kind="agreement",
        txn=txn,
        milestone=rule.then_milestone,
        since=start,
        reached=[when_where],
        missing=[then_where],
        states=states,
        agreement=rule,
        summary=(
            f"{rule.key.replace('_', ' ').capitalize()} {value}: {rule.when_milestone} in "
            f"{when_where}, {then_where} still at {still} after {_minutes(rule.within)} "
            f"({rule.name})"
        ),
    )


def system_codes():
    return dict(System.objects.values_list("id", "code"))
