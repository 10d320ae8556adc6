"""The integration catalog: plants, systems, flows and the API keys that reporters send with."""

import secrets
import zoneinfo
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import connection, models
from django.utils import timezone
from django.utils.functional import cached_property

from integration_hub.api_keys import API_KEY_PREFIX, ApiKeyQuerySet, hash_api_key
from integration_hub.roles import sees_all_plants

code_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$",
    "Use 1-32 letters, digits, '_', '.' or '-', starting with a letter or digit.",
)


def validate_timezone(value):
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone such as Europe/Berlin.")


class PlantQuerySet(models.QuerySet):
    def ensure(self, code):
        """The plant of this code, created with demo defaults when missing (demo and simulator)."""
        plant, _ = self.get_or_create(
            code=code, defaults={"name": f"Plant {code}", "timezone": "Europe/Berlin"}
        )
        return plant

    def for_user(self, user):
        """The plants a person may see: all for admins, else the plants they are assigned to."""
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


class SystemAlias(models.Model):
    """Another name a system reports under, e.g. the OpenTelemetry `service.name` of an adapter
    (`mes-adapter` → MES). Unique, so one name never means two systems."""

    system = models.ForeignKey(System, on_delete=models.CASCADE, related_name="aliases")
    alias = models.CharField(
        max_length=200, unique=True, help_text="The name as sent, e.g. a service.name."
    )

    class Meta:
        ordering = ["alias"]
        verbose_name_plural = "system aliases"

    def __str__(self):
        return f"{self.alias} → {self.system.code}"


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
    fan_out_milestones = models.JSONField(
        default=list,
        blank=True,
        help_text="Milestones every target system must reach (a quality hold reaches ERP, MES "
        "and WMS); until all have, the milestone is not reached.",
    )
    reconcile_after = models.DurationField(
        default=timedelta(minutes=15),
        help_text="How long a fan-out milestone may have reached some targets and not others "
        "before it is a reconciliation exception.",
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
        fan_out = self.fan_out_milestones
        if not isinstance(fan_out, list) or not all(isinstance(m, str) for m in fan_out):
            errors["fan_out_milestones"] = "A list of milestone names (may be empty)."
        elif "milestones" not in errors and not set(fan_out) <= set(ms):
            unknown = sorted(set(fan_out) - set(ms))
            errors["fan_out_milestones"] = f"Not milestones of this flow: {', '.join(unknown)}."
        if self.reconcile_after is not None and self.reconcile_after <= timedelta(0):
            errors["reconcile_after"] = "Must be positive."
        if errors:
            raise ValidationError(errors)

    def milestone_index(self, step):
        return self.milestones.index(step)


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
    events_per_second = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Events a second this key may send on average (empty: unlimited).",
    )
    burst = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Events it may send at once above the rate (empty: one second's worth).",
    )

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def issue(cls, name, *, systems=(), plants=(), events_per_second=None, burst=None):
        """Create a key; return (row, raw key). The raw key is not stored anywhere."""
        key = cls(name=name, events_per_second=events_per_second, burst=burst)
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

    def clean(self):
        if self.burst is not None and self.events_per_second is None:
            raise ValidationError({"burst": "A burst needs an events-per-second rate."})

    @property
    def rate_limit(self):
        """(events a second, burst) or None when unlimited."""
        if self.events_per_second is None:
            return None
        return self.events_per_second, self.burst or self.events_per_second

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


class SeveralPlants(Exception):
    """More than one plant has a row with this identifier; `rows` holds one per plant."""

    def __init__(self, rows):
        super().__init__(", ".join(r.plant.code for r in rows))
        self.rows = rows


class PlantScopedQuerySet(models.QuerySet):
    """Rows that belong to a plant: `for_user` keeps those of the plants a person may see."""

    def for_user(self, user):
        if sees_all_plants(user):
            return self
        return self.filter(plant__in=Plant.objects.for_user(user))

    def of_one_plant(self, plant_code=None):
        """The one row left, of `plant_code` when given (plants may reuse identifiers).

        Raises DoesNotExist when none is, SeveralPlants when rows of several plants are.
        """
        qs = self.filter(plant__code=plant_code) if plant_code else self
        rows = list(qs.select_related("plant").order_by("plant__code")[:10])
        if not rows:
            raise self.model.DoesNotExist
        if len(rows) > 1:
            raise SeveralPlants(rows)
        return rows[0]


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


class LoginFailure(models.Model):
    """A failed sign-in, by the username tried and the address it came from (for lock-outs)."""

    username = models.CharField(max_length=150, db_index=True)
    address = models.CharField(max_length=64, db_index=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self):
        return f"{self.username} from {self.address} at {self.at:%Y-%m-%d %H:%M:%S}"


class Shift(models.Model):
    """A plant's shift in its own time zone; `end` at or before `start` runs past midnight."""

    plant = models.ForeignKey(Plant, on_delete=models.CASCADE, related_name="shifts")
    name = models.CharField(max_length=64)
    days = models.JSONField(help_text="Days it starts on: 0 = Monday … 6 = Sunday.")
    start = models.TimeField()
    end = models.TimeField(help_text="At or before the start: the shift ends the next day.")

    class Meta:
        ordering = ["plant", "start", "name"]
        constraints = [
            models.UniqueConstraint(fields=["plant", "name"], name="uniq_shift_plant_name")
        ]

    def __str__(self):
        return f"{self.plant_id} {self.name} {self.start:%H:%M}-{self.end:%H:%M}"

    def clean(self):
        if (
            not isinstance(self.days, list)
            or not self.days
            or not all(
                isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in self.days
            )
        ):
            raise ValidationError({"days": "A list of days 0-6 (Monday = 0), at least one."})


class Downtime(models.Model):
    """Planned downtime of a plant (all flows, or the flows named): SLO clocks stop in it."""

    plant = models.ForeignKey(Plant, on_delete=models.CASCADE, related_name="downtimes")
    start = models.DateTimeField()
    end = models.DateTimeField()
    reason = models.CharField(max_length=300)
    flows = models.ManyToManyField(Flow, blank=True, help_text="Empty: every flow.")
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = PlantScopedQuerySet.as_manager()

    class Meta:
        ordering = ["plant", "start"]
        indexes = [models.Index(fields=["plant", "end", "start"], name="downtime_plant_span")]

    def __str__(self):
        return f"{self.plant_id} {self.start:%Y-%m-%d %H:%M}-{self.end:%H:%M} {self.reason}"

    def clean(self):
        if self.start and self.end and self.end <= self.start:
            raise ValidationError({"end": "The end must be after the start."})


class RateBucket(models.Model):
    """A rate limit's state when no Redis is configured: the moment its bucket is full again
    (GCRA's theoretical arrival time, seconds since the epoch), shared by every web process."""

    name = models.CharField(max_length=100, unique=True)
    full_at = models.FloatField(default=0)

    def __str__(self):
        return self.name


class RetentionKind(models.TextChoices):
    """The kinds of data the hub deletes with age (settings RETENTION_DAYS, per plant here)."""

    EVENTS = "events", "Raw events"
    PAYLOADS = "payloads", "Payloads of completed transactions"
    DEAD_LETTERS = "dead_letters", "Closed dead letters"
    MINUTE_ROLLUPS = "minute_rollups", "Minute rollups"
    HOUR_ROLLUPS = "hour_rollups", "Hour rollups"
    DELIVERIES = "deliveries", "Alert deliveries"
    REPLAYS = "replays", "Finished replays and their attempts"
    TRANSACTIONS = "transactions", "Transactions"


class RetentionOverride(models.Model):
    """A plant's own retention for one kind of data, instead of the setting."""

    plant = models.ForeignKey(Plant, on_delete=models.CASCADE, related_name="retention_overrides")
    kind = models.CharField(max_length=32, choices=RetentionKind.choices)
    days = models.PositiveIntegerField(help_text="Days kept; 0 keeps them forever.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["plant", "kind"], name="uniq_retention_override")
        ]

    def __str__(self):
        return f"{self.plant.code} {self.kind}: {self.days} d"


class CatalogStamp(models.Model):
    """One row whose token changes whenever a plant, system, flow (or a flow's targets) or a
    planned downtime is written: database triggers set a new random token (migration 0009), so
    every writer counts, the admin's, the API's, a bulk update's or raw SQL's. A process may
    keep what it read of them while the token it read it under is still the one stored
    (tracing's ingest Catalog does); a random token, not a counter, because a rolled-back
    change must not come back as a later change's number."""

    token = models.CharField(max_length=32)

    def __str__(self):
        return self.token

    @classmethod
    def current(cls):
        """The stored token, or None (no row: e.g. after a flush, until the next write). Raw
        SQL: read by every ingest batch, where compiling the query cost more than running it."""
        with connection.cursor() as cursor:
            table = connection.ops.quote_name(cls._meta.db_table)
            cursor.execute(f"SELECT token FROM {table} WHERE id = 1")
            row = cursor.fetchone()
        return row[0] if row else None
