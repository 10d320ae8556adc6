"""Dead letters: messages that did not get through, kept with their payload and history."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from integration_hub.models import Flow, Plant, PlantScopedQuerySet, System


class DeadLetterState(models.TextChoices):
    NEW = "new", "New"
    INVESTIGATING = "investigating", "Investigating"
    REPLAY_QUEUED = "replay_queued", "Replay queued"
    REPLAYED = "replayed", "Replayed"
    RESOLVED = "resolved", "Resolved"
    DISCARDED = "discarded", "Discarded"


class DeadLetter(models.Model):
    """A message that did not get through, kept with its payload for triage and replay.

    Created from a failed/rejected trace event that carries a payload (ingestion), or reported
    directly by middleware. Triage (monitoring.triage) moves its state and keeps its trail.
    """

    # Unique per plant: one plant's reporters can neither collide with nor look up another's ids.
    external_id = models.CharField(max_length=128, help_text="Event id or client id.")
    # No database constraint: on PostgreSQL events are partitioned, and a foreign key needs a
    # unique key of its own on the event id. Retention keeps the event a dead letter points at
    # (moving it aside before its partition is dropped), and deletes go through Django, which
    # clears this link.
    event = models.OneToOneField(
        "tracing.TraceEvent",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="dead_letter",
        db_constraint=False,
    )
    transaction = models.ForeignKey(
        "tracing.Transaction",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="dead_letters",
    )
    fingerprint = models.CharField(max_length=32, db_index=True)
    state = models.CharField(
        max_length=16, choices=DeadLetterState.choices, default=DeadLetterState.NEW
    )
    flow = models.ForeignKey(Flow, on_delete=models.PROTECT, related_name="+")
    plant = models.ForeignKey(Plant, on_delete=models.PROTECT, related_name="+")
    source = models.ForeignKey(System, on_delete=models.PROTECT, related_name="+")
    target = models.ForeignKey(
        System, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    correlation_id = models.CharField(max_length=128)
    step = models.CharField(max_length=64, blank=True)
    error_class = models.CharField(max_length=32)
    error_code = models.CharField(max_length=128, blank=True)
    error_message = models.TextField(blank=True)
    payload = models.JSONField(null=True)
    headers = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=1)
    first_failed_at = models.DateTimeField()
    last_failed_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was replayed, resolved or discarded."
    )
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)
    business_keys = models.JSONField(default=dict, blank=True)
    # The identifying key ("order:1000123") that orders a bulk replay: release before posting.
    business_key = models.CharField(max_length=300, blank=True, db_index=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_dead_letters",
    )
    superseded_at = models.DateTimeField(
        null=True, blank=True, help_text="Its transaction reached the milestone later."
    )
    payload_version = models.PositiveIntegerField(default=1)
    edited_payload = models.JSONField(
        null=True, blank=True, help_text="Latest edit; the original stays in `payload`."
    )

    CLOSED_STATES = frozenset({"replayed", "resolved", "discarded"})
    OPEN_STATES = frozenset({"new", "investigating", "replay_queued"})
    # A replayed one may be sent again on purpose (with a reason); resolved and discarded ones
    # were closed by a person and stay closed.
    REPLAYABLE_STATES = frozenset({"new", "investigating", "replayed"})
    objects = PlantScopedQuerySet.as_manager()

    class Meta:
        permissions = [("replay_deadletter", "Can triage and replay dead letters")]
        constraints = [
            models.UniqueConstraint(fields=["plant", "external_id"], name="uniq_dl_plant_id")
        ]
        indexes = [
            models.Index(fields=["external_id"], name="dl_external_id"),
            models.Index(fields=["state", "-last_failed_at"], name="dl_state_last"),
            models.Index(fields=["plant", "state"], name="dl_plant_state"),
            models.Index(
                # The dashboard's counts per error class read this index alone.
                fields=["plant", "error_class", "state", "first_failed_at"],
                condition=Q(state__in=["investigating", "new", "replay_queued"]),
                name="dl_open_class",
            ),
        ]

    def __str__(self):
        return f"{self.external_id} ({self.state})"

    @property
    def is_open(self):
        return self.state in self.OPEN_STATES

    @property
    def is_replayable(self):
        return self.state in self.REPLAYABLE_STATES

    @property
    def current_payload(self):
        """What a replay sends: the latest edit, else the original."""
        return self.edited_payload if self.payload_version > 1 else self.payload

    @property
    def error(self):
        return {"class": self.error_class, "code": self.error_code, "message": self.error_message}


class DeadLetterChange(models.Model):
    """One entry of a dead letter's audit trail: a state change, assignment, note or edit."""

    class Kind(models.TextChoices):
        STATE = "state", "State"
        ASSIGN = "assign", "Assignment"
        NOTE = "note", "Note"
        EDIT = "edit", "Payload edit"
        SUPERSEDED = "superseded", "Superseded"

    dead_letter = models.ForeignKey(DeadLetter, on_delete=models.CASCADE, related_name="changes")
    at = models.DateTimeField(default=timezone.now)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["dead_letter", "at"], name="dlchange_dl_at")]

    def __str__(self):
        return f"{self.dead_letter_id} {self.kind} {self.at:%Y-%m-%d %H:%M:%S}"
