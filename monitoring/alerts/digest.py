"""Shift handover: when a plant's shift ends, one email to the plant's email channels with what
is open (dead letters by cause, stuck transactions, reconciliation exceptions), what changed
during the shift, and the SLO status with its reason, each with a link. Sent once per plant
and shift end (a ShiftDigest row).
"""

import logging
from datetime import timedelta

from django.core import mail
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Q
from django.template.loader import render_to_string
from django.utils import timezone

from integration_hub.calendars import shifts_ended
from integration_hub.models import Plant
from monitoring.alerts.channels.links import base_url
from monitoring.models import (
    Alert,
    AlertChannel,
    ReconciliationException,
    ShiftDigest,
    SLOStatus,
)
from tracing.models import DeadLetter, Transaction, TransactionState

log = logging.getLogger(__name__)
# A digest is still sent when beat was down this long past the shift's end.
GRACE = timedelta(hours=6)


def subscribers(plant):
    """Addresses of the enabled email channels that take this plant's notices."""
    channels = AlertChannel.objects.filter(enabled=True, kind=AlertChannel.Kind.EMAIL).filter(
        Q(plants=plant) | Q(plants__isnull=True)
    )
    return sorted({address for c in channels.distinct() for address in c.recipients})


def handover(plant, begins, ends):
    """What the next shift needs to know, as a template context."""
    letters = DeadLetter.objects.filter(plant=plant)
    open_letters = letters.filter(state__in=DeadLetter.OPEN_STATES)
    causes = (
        open_letters.values("fingerprint", "error_class", "error_code", "flow__code")
        .annotate(count=Count("id"), message=Max("error_message"))
        .order_by("-count")[:10]
    )
    stuck = (
        Transaction.objects.filter(plant=plant)
        .in_state(TransactionState.STUCK, ends)
        .values("flow__code")
        .annotate(count=Count("id"))
        .order_by("-count")
    )
    statuses = SLOStatus.objects.filter(plant=plant, slo__enabled=True).select_related("slo")
    exceptions = ReconciliationException.objects.filter(plant=plant)
    return {
        "exceptions": list(exceptions.open().order_by("since")[:10]),
        "exceptions_total": exceptions.open().count(),
        "exceptions_opened": exceptions.filter(opened_at__gt=begins, opened_at__lte=ends).count(),
        "exceptions_closed": exceptions.filter(closed_at__gt=begins, closed_at__lte=ends).count(),
        "plant": plant,
        "base": base_url(),
        "causes": list(causes),
        "open_total": open_letters.count(),
        "stuck": list(stuck),
        "stuck_total": sum(row["count"] for row in stuck),
        "statuses": list(statuses.order_by("slo_id")),
        "new_letters": letters.filter(created_at__gt=begins, created_at__lte=ends).count(),
        "closed_letters": letters.filter(closed_at__gt=begins, closed_at__lte=ends).count(),
        "completed": Transaction.objects.filter(
            plant=plant, completed_at__gt=begins, completed_at__lte=ends
        ).count(),
        "alerts": list(
            Alert.objects.filter(plant=plant)
            .filter(Q(fired_at__gt=begins, fired_at__lte=ends))
            .order_by("fired_at")[:20]
        ),
    }


def send_shift_digests(now=None):
    """Send the digest of every shift that ended since GRACE ago and has none yet.
    Returns [(plant code, shift name, recipients)] of what was sent."""
    now = now or timezone.now()
    sent = []
    for plant in Plant.objects.filter(shifts__isnull=False).distinct():
        for shift, begins, ends in shifts_ended(plant, now - GRACE, now):
            recipients = subscribers(plant)
            if not recipients:
                continue
            try:
                with transaction.atomic():
                    ShiftDigest.objects.create(
                        plant=plant, shift=shift.name, ended_at=ends, recipients=recipients
                    )
                    message = build(plant, shift, begins, ends, recipients)
            except IntegrityError:
                continue  # another beat sent it
            try:
                mail.mailers.default.send_messages([message])
            except Exception:
                log.warning("shift digest for %s %s not sent", plant.code, shift.name)
                ShiftDigest.objects.filter(plant=plant, shift=shift.name, ended_at=ends).delete()
                continue
            sent.append((plant.code, shift.name, recipients))
    return sent


def build(plant, shift, begins, ends, recipients):
    context = handover(plant, begins, ends) | {"shift": shift, "begins": begins, "ends": ends}
    with timezone.override(plant.tzinfo):
        body = render_to_string("alerts/shift_digest.txt", context)
        when = f"{begins:%a %H:%M}–{ends:%H:%M}"
    subject = f"[hub] {plant.code} shift handover: {shift.name} ({when})"
    return mail.EmailMessage(subject=subject, body=body, to=recipients)
