"""Routing transitions to channels and sending deliveries: claimed under a lease, retried and
recovered when a worker dies."""

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from integration_hub.celery import app
from monitoring.alerts import channels
from monitoring.alerts.channels import payload_for, target_of, test_payload
from monitoring.models import (
    SEVERITY_RANK,
    AlertChannel,
    Delivery,
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
    options = {"queue": settings.ALERT_DELIVERY_QUEUE} if settings.ALERT_DELIVERY_QUEUE else {}
    if countdown:
        options["countdown"] = countdown
    app.send_task("monitoring.send_deliveries", args=[list(ids)], **options)


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
