"""The integration catalog: plants, systems, flows and the API keys that reporters send with."""

import hashlib
import secrets
import uuid
import zoneinfo
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.functional import cached_property

code_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$",
    "Use 1-32 letters, digits, '_', '.' or '-', starting with a letter or digit.",
)


def validate_timezone(value):
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone such as Europe/Berlin.")


class PlantQuerySet(models.QuerySet):
    def for_user(self, user):
        """The plants a person may see: all for admins, else the plants they are assigned to."""
        from integration_hub.access import sees_all_plants

        if sees_all_plants(user):
            return self
        if not user.is_authenticated:
            return self.none()
        return self.filter(memberships__user=user)


class Plant(models.Model):
    code = models.CharField(max_length=32, unique=True, validators=[code_validator])
    name = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])

    objects = PlantQuerySet.as_manager()

    class Meta:
        ordering = ["code"]

    def __str__(self):
        return f"{self.code} {self.name}"

    @property
    def tzinfo(self):
        return zoneinfo.ZoneInfo(self.timezone)


class System(models.Model):
    class Kind(models.TextChoices):
        ERP = "erp", "ERP"
        MES = "mes", "MES"
        WMS = "wms", "WMS"
        QMS = "qms", "QMS"
        MIDDLEWARE = "middleware", "Middleware"
        HUB = "hub", "This hub"
        OTHER = "other", "Other"

    code = models.CharField(max_length=32, unique=True, validators=[code_validator])
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.OTHER)
    replay_url = models.URLField(
        blank=True, help_text="Where replayed dead letters for this system are POSTed."
    )
    replay_auth_header = models.CharField(
        max_length=64,
        blank=True,
        default="Authorization",
        help_text="Header name, e.g. Authorization.",
    )
    # Write-only: never rendered back by the admin or the API.
    replay_auth_value = models.CharField(max_length=1024, blank=True)

    class Meta:
        ordering = ["code"]

    def __str__(self):
        return f"{self.code} {self.name}"

    @property
    def has_replay_secret(self):
        return bool(self.replay_auth_value)


class Flow(models.Model):
    code = models.CharField(max_length=64, unique=True, validators=[code_validator])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    milestones = models.JSONField(
        help_text='Ordered milestone names, e.g. ["released", "received"].'
    )
    completing_milestones = models.JSONField(help_text="Milestone(s) that complete a transaction.")
    stuck_after = models.DurationField(
        default=timedelta(hours=1), help_text="Open longer than this counts as stuck."
    )
    source_system = models.ForeignKey(
        System, null=True, blank=True, on_delete=models.PROTECT, related_name="flows_out"
    )
    target_systems = models.ManyToManyField(System, blank=True, related_name="flows_in")
    position = models.PositiveSmallIntegerField(
        default=100, help_text="Order within a business journey (release before consumption...)."
    )

    class Meta:
        ordering = ["position", "code"]

    def __str__(self):
        return self.code

    def clean(self):
        errors = {}
        ms = self.milestones
        if not isinstance(ms, list) or not ms or not all(isinstance(m, str) and m for m in ms):
            errors["milestones"] = "A non-empty list of milestone names."
        elif len(set(ms)) != len(ms):
            errors["milestones"] = "Milestone names must be unique."
        done = self.completing_milestones
        if not isinstance(done, list) or not done:
            errors["completing_milestones"] = "A non-empty list of milestone names."
        elif "milestones" not in errors and not set(done) <= set(ms):
            unknown = sorted(set(done) - set(ms))
            errors["completing_milestones"] = f"Not milestones of this flow: {', '.join(unknown)}."
        if self.stuck_after is not None and self.stuck_after <= timedelta(0):
            errors["stuck_after"] = "Must be positive."
        if errors:
            raise ValidationError(errors)

    def milestone_index(self, step):
        return self.milestones.index(step)


API_KEY_PREFIX = "ihk_"


def hash_api_key(raw):
    """API keys are 256-bit random strings, so one SHA-256 is enough (no salt/KDF needed)."""
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiKeyQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)

    def find(self, raw):
        """The active key for a raw key string, or None."""
        if not raw or not raw.startswith(API_KEY_PREFIX):
            return None
        return (
            self.active()
            .prefetch_related("systems", "plants")
            .filter(key_hash=hash_api_key(raw))
            .first()
        )


class ApiKey(models.Model):
    """A reporter's key for sending data. Only its hash is stored; the key is shown once."""

    name = models.CharField(max_length=200, help_text="Who reports with this key.")
    prefix = models.CharField(
        max_length=16, editable=False, help_text="First characters, to recognise it."
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    systems = models.ManyToManyField(
        System, blank=True, help_text="Source systems it may report for (none: any)."
    )
    plants = models.ManyToManyField(
        Plant, blank=True, help_text="Plants it may report for (none: any)."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, name, *, systems=(), plants=()):
        """Create a key; return (row, raw key). The raw key is not stored anywhere."""
        key = cls(name=name)
        raw = key.set_new_key()
        key.save()
        key.systems.set(systems)
        key.plants.set(plants)
        return key, raw

    def set_new_key(self):
        """Give this (unsaved) row a fresh key; return the raw key, which is not stored."""
        raw = API_KEY_PREFIX + secrets.token_urlsafe(32)
        self.prefix, self.key_hash = raw[:12], hash_api_key(raw)
        return raw

    @property
    def is_active(self):
        return self.revoked_at is None

    def revoke(self):
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])

    def allows(self, *, system_code, plant_code):
        """Whether this key may report for that source system and plant (empty set: any)."""
        systems, plants = self.allowed_codes
        return (not systems or system_code in systems) and (not plants or plant_code in plants)

    @cached_property
    def allowed_codes(self):
        """(system codes, plant codes) this key is limited to; empty means any."""
        return {s.code for s in self.systems.all()}, {p.code for p in self.plants.all()}

    def touch(self, now=None):
        """Record use, at most once a minute so the ingest path does not write on every call."""
        now = now or timezone.now()
        if self.last_used_at is None or now - self.last_used_at > timedelta(minutes=1):
            ApiKey.objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now


class WorkerHeartbeat(models.Model):
    """Last time a Celery worker ran the heartbeat task that beat sends; shown by /readyz."""

    name = models.CharField(max_length=200, unique=True)
    hostname = models.CharField(max_length=200)
    at = models.DateTimeField()

    def __str__(self):
        return f"{self.name} @ {self.at:%Y-%m-%d %H:%M:%S}"


class DeadLetterState(models.TextChoices):
    NEW = "new", "New"
    INVESTIGATING = "investigating", "Investigating"
    REPLAY_QUEUED = "replay_queued", "Replay queued"
    REPLAYED = "replayed", "Replayed"
    RESOLVED = "resolved", "Resolved"
    DISCARDED = "discarded", "Discarded"


class PlantScopedQuerySet(models.QuerySet):
    """Rows that belong to a plant: `for_user` keeps those of the plants a person may see."""

    def for_user(self, user):
        from integration_hub.access import sees_all_plants

        if sees_all_plants(user):
            return self
        return self.filter(plant__in=Plant.objects.for_user(user))


class DeadLetter(models.Model):
    """A message that did not get through, kept with its payload for triage and replay.

    Created from a failed/rejected trace event that carries a payload (ingestion), or reported
    directly by middleware. The triage inbox and replay build on this row.
    """

    external_id = models.CharField(max_length=128, unique=True, help_text="Event id or client id.")
    event = models.OneToOneField(
        "tracing.TraceEvent",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="dead_letter",
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
    # Which state may follow which; replay_queued is left only by a replay's outcome or cancel.
    TRANSITIONS = {
        "new": {"investigating", "replay_queued", "resolved", "discarded"},
        "investigating": {"replay_queued", "resolved", "discarded"},
        "replay_queued": {"replayed", "investigating"},
        "replayed": set(),
        "resolved": set(),
        "discarded": set(),
    }

    objects = PlantScopedQuerySet.as_manager()

    class Meta:
        permissions = [("replay_deadletter", "Can triage and replay dead letters")]
        indexes = [
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
    def current_payload(self):
        """What a replay sends: the latest edit, else the original."""
        return self.edited_payload if self.payload_version > 1 else self.payload

    @property
    def error(self):
        return {"class": self.error_class, "code": self.error_code, "message": self.error_message}

    def can_move_to(self, state):
        return state in self.TRANSITIONS.get(self.state, ())

    def move_to(self, state, *, by=None, text="", now=None, kind="state"):
        """Change state if the state machine allows it (conditional UPDATE); record who and when.

        Returns the change row, or None when another request moved it first.
        """
        now = now or timezone.now()
        allowed_from = [s for s, nexts in self.TRANSITIONS.items() if state in nexts]
        closed = now if state in self.CLOSED_STATES else None
        updated = DeadLetter.objects.filter(pk=self.pk, state__in=allowed_from).update(
            state=state, closed_at=closed, updated_at=now
        )
        if updated != 1:
            return None
        change = DeadLetterChange.objects.create(
            dead_letter=self, at=now, by=by, kind=kind, from_state=self.state, to_state=state,
            text=text,
        )  # fmt: skip
        self.state, self.closed_at, self.updated_at = state, closed, now
        return change

    def assign(self, assignee, *, by=None, now=None):
        """Assign to a person (or nobody); a new dead letter someone takes is being investigated."""
        now = now or timezone.now()
        state = "investigating" if self.state == "new" and assignee else self.state
        DeadLetter.objects.filter(pk=self.pk).update(assignee=assignee, state=state, updated_at=now)
        change = DeadLetterChange.objects.create(
            dead_letter=self, at=now, by=by, kind="assign", from_state=self.state, to_state=state,
            assignee=assignee,
        )  # fmt: skip
        self.assignee, self.state, self.updated_at = assignee, state, now
        return change

    def add_note(self, text, *, by=None, now=None):
        return DeadLetterChange.objects.create(
            dead_letter=self, at=now or timezone.now(), by=by, kind="note",
            from_state=self.state, to_state=self.state, text=text,
        )  # fmt: skip

    def edit_payload(self, payload, *, reason, by=None, now=None):
        """Store an edited payload as the next version; the original is kept as it was."""
        now = now or timezone.now()
        version = self.payload_version + 1
        PayloadEdit.objects.create(
            dead_letter=self, version=version, payload=payload, reason=reason, edited_by=by,
            edited_at=now,
        )  # fmt: skip
        DeadLetter.objects.filter(pk=self.pk).update(
            edited_payload=payload, payload_version=version, updated_at=now
        )
        self.edited_payload, self.payload_version = payload, version
        DeadLetterChange.objects.create(
            dead_letter=self, at=now, by=by, kind="edit", from_state=self.state,
            to_state=self.state, text=f"Payload version {version}: {reason}",
        )  # fmt: skip
        return version


class PlantMembership(models.Model):
    """A person assigned to a plant: supervisors and analysts see only their plants' data."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="plant_memberships"
    )
    plant = models.ForeignKey(Plant, on_delete=models.CASCADE, related_name="memberships")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "plant"], name="uniq_plant_membership")
        ]

    def __str__(self):
        return f"{self.user} @ {self.plant.code}"


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


class PayloadEdit(models.Model):
    """An analyst's edited payload (version 2, 3…); version 1 is the dead letter's original."""

    dead_letter = models.ForeignKey(DeadLetter, on_delete=models.CASCADE, related_name="edits")
    version = models.PositiveIntegerField()
    payload = models.JSONField(null=True)
    reason = models.TextField()
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    edited_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["dead_letter", "version"]
        constraints = [
            models.UniqueConstraint(fields=["dead_letter", "version"], name="uniq_payload_version")
        ]

    def __str__(self):
        return f"{self.dead_letter_id} v{self.version}"


class BulkAction(models.Model):
    """A bulk request (replay, resolve, discard, assign) on a selection: the handle to follow it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    action = models.CharField(max_length=16)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    selection = models.JSONField(default=dict, help_text="The ids or filter it was asked for.")
    reason = models.TextField(blank=True)
    touched = models.PositiveIntegerField(default=0)
    skipped = models.JSONField(default=dict, help_text="Left out, by why (superseded, closed…).")
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-requested_at"]

    def __str__(self):
        return f"{self.action} × {self.touched} ({self.id})"


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
