"""Owners: new dead letters assigned by the most specific matching owner rule, and each owner
told by email what they were given (one message per owner and run, with a link to the inbox)."""

import logging
from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.core import mail
from django.utils import timezone

from monitoring.models import OwnerRule, Watermark
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
    """Assign new, unassigned dead letters created since the last run; notify the owners.
    Returns {username: [dead letter ids]}."""
    now = now or timezone.now()
    mark, _ = Watermark.objects.get_or_create(name="owners", defaults={"at": now - LAG})
    rules = sorted(
        OwnerRule.objects.filter(enabled=True).select_related("owner"),
        key=lambda r: (-r.specificity, r.id),
    )
    given = defaultdict(list)
    if rules:
        letters = list(
            DeadLetter.objects.filter(
                created_at__gte=mark.at - LAG, state="new", assignee__isnull=True
            )
            .exclude(changes__kind="assign")  # never handed to anyone (or taken off on purpose)
            .select_related("plant", "flow", "target")
        )
        allowed = {}  # plant id -> ids of people who may triage its dead letters
        for plant in {letter.plant for letter in letters}:
            allowed[plant.id] = {p.id for p in assignable([plant])}
        for letter in letters:
            rule = owner_for(letter, rules, allowed)
            if rule is None:
                continue
            text = f"Owner rule {rule.name!r}"
            states.assign(letter, rule.owner, now=now, text=text, investigate=False)
            given[rule.owner].append(letter)
    Watermark.objects.filter(pk=mark.pk).update(at=now)
    for owner, letters in given.items():
        notify(owner, letters)
    return {owner.get_username(): [d.id for d in letters] for owner, letters in given.items()}


def notify(owner, letters):
    """One email to the owner listing what was assigned, with a link to their open letters."""
    if not owner.email:
        return
    base = settings.HUB_BASE_URL.rstrip("/")
    lines = [
        f"- {d.plant.code} {d.flow.code} → {d.target.code if d.target else '?'}: "
        f"{d.error_class} {d.error_code} {d.error_message[:160]}\n  {base}/dead-letters/{d.pk}/"
        for d in letters
    ]
    body = (
        f"{len(letters)} new dead letter{'s' if len(letters) != 1 else ''} assigned to you by "
        f"owner rules:\n\n" + "\n".join(lines) + "\n\nYour open dead letters: "
        f"{base}/dead-letters/?assignee={owner.get_username()}\n"
    )
    subject = f"[hub] {len(letters)} new dead letter{'s' if len(letters) != 1 else ''} for you"
    try:
        mail.mailers.default.send_messages(
            [mail.EmailMessage(subject=subject, body=body, to=[owner.email])]
        )
    except Exception:  # the assignment stands; the inbox shows it
        log.warning("could not email %s about %d dead letters", owner.email, len(letters))
