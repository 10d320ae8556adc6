"""One reconciliation pass (beat, every RECONCILIATION_SECONDS): open an exception for each new
finding, keep open ones up to date, and close those whose missing event has arrived."""

from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from integration_hub.calendars import Calendar
from monitoring.models import AgreementRule, ReconciliationException
from monitoring.reconciliation.findings import (
    agreement_findings,
    fan_out_findings,
    system_codes,
)
from tracing.models import TraceEvent

OPEN = ReconciliationException.State.OPEN


@dataclass
class Pass:
    opened: list = field(default_factory=list)
    closed: list = field(default_factory=list)
    still_open: int = 0


def reconcile(now=None):
    """Bring the exceptions in line with what the transactions say now; return the Pass."""
    now = now or timezone.now()
    calendar = Calendar.everything()
    codes = system_codes()
    open_rows = {
        (e.rule, e.transaction_id): e for e in ReconciliationException.objects.open().order_by()
    }

    def also(prefix):
        return [t for rule, t in open_rows if rule.startswith(prefix)]

    findings = fan_out_findings(now, calendar, codes, also=also("fan_out:"))
    for rule in AgreementRule.objects.filter(enabled=True).select_related("when_flow", "then_flow"):
        opened_for_rule = [t for r, t in open_rows if r == rule.slug]
        findings += agreement_findings(rule, now, calendar, codes, also=opened_for_rule)
    result = Pass()
    current = {(f.rule, f.txn.id): f for f in findings}
    with transaction.atomic():
        for key, finding in current.items():
            row = open_rows.get(key)
            if row is None:
                result.opened.append(_open(finding, now))
            else:
                _refresh(row, finding, now)
        for key, row in open_rows.items():
            if key not in current:
                _close(row, now)
                result.closed.append(row)
    result.still_open = len(current) - len(result.opened)
    return result


def _open(finding, now):
    """A new exception; a pass running alongside that opened it first wins."""
    try:
        with transaction.atomic():
            return _create(finding, now)
    except IntegrityError:
        return ReconciliationException.objects.get(
            rule=finding.rule, transaction=finding.txn, state=OPEN
        )


def _create(finding, now):
    txn = finding.txn
    return ReconciliationException.objects.create(
        rule=finding.rule,
        kind=finding.kind,
        agreement=finding.agreement,
        plant_id=txn.plant_id,
        flow_id=txn.flow_id,
        transaction=txn,
        correlation_id=txn.correlation_id,
        business_keys=txn.business_keys,
        milestone=finding.milestone,
        reached=finding.reached,
        missing=finding.missing,
        states=finding.states,
        summary=finding.summary,
        since=finding.since,
        opened_at=now,
        updated_at=now,
    )


def _refresh(row, finding, now):
    """Some of the missing systems arrived, not all: say what is still missing."""
    fresh = (finding.reached, finding.missing, finding.states, finding.summary)
    if fresh != (row.reached, row.missing, row.states, row.summary):
        row.reached, row.missing, row.states, row.summary = fresh
        row.updated_at = now
        row.save(update_fields=["reached", "missing", "states", "summary", "updated_at"])


def _close(row, now):
    """The missing event arrived (or the rule no longer applies): closed, naming the event."""
    row.state = ReconciliationException.State.CLOSED
    row.closed_at = now
    row.updated_at = now
    row.closed_by_event = _arrival(row)
    row.save(update_fields=["state", "closed_at", "updated_at", "closed_by_event"])


def _arrival(row):
    """The event that brought the missing milestone, if it is one of the transaction's own."""
    events = TraceEvent.objects.filter(
        transaction_id=row.transaction_id, step=row.milestone, status="ok"
    )
    missing = set(row.missing)
    for event in events.select_related("source", "target").order_by("-occurred_at")[:50]:
        systems = {event.source.code, event.target.code if event.target else None}
        if systems & missing:
            return event.event_id
    return ""
