"""Owners: new dead letters and reconciliation exceptions assigned by the most specific
matching owner rule, and each owner told by email what they were given (one message per owner
and run, with links). An exception matches rules by plant, flow, the error class
"reconciliation" and its first missing system as the target."""

import logging
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.core import mail
from django.utils import timezone

from monitoring.models import OwnerRule, ReconciliationException, Watermark
from monitoring.triage import states
from monitoring.triage.actions import assignable
from tracing.models import DeadLetter

log = logging.getLogger(__name__)
# Letters committed a little after the last run's clock are looked at again.
LAG = timedelta(seconds=60)


def owner_for(letter, rules, allowed):
    """The first rule (most specific first) that matches and whose owner may triage it
    (`allowed`: plant id → ids of the people who may)."""
    for rule in rules:
        if rule.matches(letter) and rule.owner_id in allowed.get(letter.plant_id, ()):
            return rule
    return None


def assign_owners(now=None):
    """Assign new, unassigned dead letters and reconciliation exceptions opened since the last
    run; notify the owners. Returns {username: [dead letter ids]} (exceptions: `exceptions`)."""
    now = now or timezone.now()
    mark, _ = Watermark.objects.get_or_create(name="owners", defaults={"at": now - LAG})
    rules = sorted(
        OwnerRule.objects.filter(enabled=True).select_related("owner"),
        key=lambda r: (-r.specificity, r.id),
    )
    given, exceptions = defaultdict(list), defaultdict(list)
    if rules:
        letters = list(
            DeadLetter.objects.filter(
                created_at__gte=mark.at - LAG, state="new", assignee__isnull=True
            )
            .exclude(changes__kind="assign")  # never handed to anyone (or taken off on purpose)
            .select_related("plant", "flow", "target")
        )
        allowed = {}  # plant id -> ids of people who may triage its dead letters
        for letter in letters:
            rule = owner_for(letter, rules, allowed_for(letter.plant, allowed))
            if rule is None:
                continue
            text = f"Owner rule {rule.name!r}"
            states.assign(letter, rule.owner, now=now, text=text, investigate=False)
            given[rule.owner].append(letter)
        for exception in _new_exceptions(mark.at - LAG):
            if (rule := owner_for(exception, rules, allowed_for(exception.plant, allowed))) is None:
                continue
            ReconciliationException.objects.filter(pk=exception.pk, assignee=None).update(
                assignee=rule.owner, updated_at=now
            )
            exceptions[rule.owner].append(exception)
    Watermark.objects.filter(pk=mark.pk).update(at=now)
    for owner in given.keys() | exceptions.keys():
        notify(owner, given.get(owner, []), exceptions.get(owner, []))
    result = {owner.get_username(): [d.id for d in letters] for owner, letters in given.items()}
    if exceptions:
        result["exceptions"] = {o.get_username(): [e.id for e in x] for o, x in exceptions.items()}
    return result


def _new_exceptions(since):
    return (
        ReconciliationException.objects.open()
        .filter(opened_at__gte=since, assignee__isnull=True)
        .select_related("plant", "flow")
    )


def allowed_for(plant, allowed):
    if plant.id not in allowed:
        allowed[plant.id] = {p.id for p in assignable([plant])}
    return allowed


def _plural(n, noun):
    return f"{n} new {noun}{'s' if n != 1 else ''}"


def notify(owner, letters, exceptions=()):
    """One email to the owner listing what was assigned, with links to each and to their
    open items."""
    if not owner.email:
        return
    base = settings.HUB_BASE_URL.rstrip("/")
    parts, subject = [], []
    if letters:
        lines = [
            f"- {d.plant.code} {d.flow.code} → {d.target.code if d.target else '?'}: "
            f"{d.error_class} {d.error_code} {d.error_message[:160]}\n"
            f"  {base}/dead-letters/{d.pk}/"
            for d in letters
        ]
        parts.append(
            f"{_plural(len(letters), 'dead letter')} assigned to you by owner rules:\n\n"
            + "\n".join(lines)
            + f"\n\nYour open dead letters: {base}/dead-letters/?assignee={owner.get_username()}"
        )
        subject.append(_plural(len(letters), "dead letter"))
    if exceptions:
        lines = [
            f"- {e.plant.code}: {e.summary}\n  {base}{e.get_absolute_url()}" for e in exceptions
        ]
        parts.append(
            f"{_plural(len(exceptions), 'reconciliation exception')} assigned to you by owner "
            f"rules:\n\n" + "\n".join(lines) + f"\n\nAll open: {base}/reconciliation/"
        )
        subject.append(_plural(len(exceptions), "reconciliation exception"))
    body = "\n\n".join(parts) + "\n"
    subject = f"[hub] {' and '.join(subject)} for you"
    try:
        mail.mailers.default.send_messages(
            [mail.EmailMessage(subject=subject, body=body, to=[owner.email])]
        )
    except Exception:  # the assignment stands; the inbox shows it
        log.warning("could not email %s about what owner rules gave them", owner.email)
