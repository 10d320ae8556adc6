"""Replays: each request to send a dead letter again, its attempts and per-system slots."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from integration_hub.models import System
from monitoring.models.triage import BulkAction
from tracing.models import DeadLetter


class ReplayState(models.TextChoices):
    HELD = "held", "Held (an earlier step of the same order is dead-lettered)"
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    SUPERSEDED = "superseded", "Left out: superseded"


ACTIVE_REPLAY_STATES = ("held", "queued", "sending")


class Replay(models.Model):
    """One request to replay a dead letter: the unit of work, claimed by a worker with a lease.

    The database, not the broker, is the source of truth: a row stays `queued` or `sending`
    until an outcome is recorded, and the sweeper re-enqueues rows whose lease ran out.
    """

    dead_letter = models.ForeignKey(DeadLetter, on_delete=models.CASCADE, related_name="replays")
    bulk = models.ForeignKey(
        BulkAction, null=True, blank=True, on_delete=models.SET_NULL, related_name="replays"
    )
    target = models.ForeignKey(System, on_delete=models.PROTECT, related_name="+")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    reason = models.TextField(blank=True)
    payload = models.JSONField(null=True)
    payload_version = models.PositiveIntegerField(default=1)
    idempotency_key = models.CharField(max_length=200)
    state = models.CharField(max_length=16, choices=ReplayState.choices, default="queued")
    rank = models.PositiveIntegerField(default=0, help_text="Flow position, then milestone.")
    business_key = models.CharField(max_length=300, blank=True)
    not_before = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    attempt_count = models.PositiveSmallIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            # One replay in flight per dead letter: a second request cannot queue a duplicate.
            models.UniqueConstraint(
                fields=["dead_letter"],
                condition=models.Q(state__in=ACTIVE_REPLAY_STATES),
                name="uniq_active_replay",
            )
        ]
        indexes = [
            models.Index(fields=["state", "lease_until"], name="replay_state_lease"),
            models.Index(fields=["bulk", "state"], name="replay_bulk_state"),
            models.Index(fields=["claim_token"], name="replay_claim_token"),
        ]

    def __str__(self):
        return f"replay {self.pk} of {self.dead_letter_id} ({self.state})"


class ReplayAttempt(models.Model):
    """One delivery attempt of a replay: what was sent, what came back, how long it took."""

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded", "Succeeded"
        RETRY = "retry", "Will retry"
        FAILED = "failed", "Failed"

    replay = models.ForeignKey(Replay, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    payload_version = models.PositiveIntegerField(default=1)
    url = models.CharField(max_length=500, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)

    class Meta:
        ordering = ["replay", "number", "id"]
        indexes = [models.Index(fields=["replay", "number"], name="attempt_replay_number")]

    def __str__(self):
        return f"{self.replay_id}#{self.number} {self.outcome}"


class ReplaySlot(models.Model):
    """One of a target system's concurrent-delivery slots, held under a lease by one task."""

    system = models.ForeignKey(System, on_delete=models.CASCADE, related_name="+")
    number = models.PositiveSmallIntegerField()
    holder = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["system", "number"], name="uniq_replay_slot")
        ]

    def __str__(self):
        return f"{self.system_id}#{self.number}"
