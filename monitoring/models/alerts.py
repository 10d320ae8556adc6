"""Alert rules, channels, alerts with their transitions, and each delivery."""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from integration_hub.models import Flow, Plant
from monitoring.models.slo import SLO


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class AlertRule(models.Model):
    """A condition worth telling someone about, scoped by plant and flow.

    Without a plant the rule is evaluated for every plant separately (one alert per plant).
    """

    class Kind(models.TextChoices):
        SLO_FAST_BURN = "slo_fast_burn", "SLO fast burn (page)"
        SLO_SLOW_BURN = "slo_slow_burn", "SLO slow burn (ticket)"
        STUCK = "stuck", "Stuck transactions"
        DEAD_LETTER_NEW_GROUP = "dead_letter_new_group", "New dead-letter group"
        DEAD_LETTERS_OPEN = "dead_letters_open", "Open dead letters above N"
        DEAD_LETTER_GROWTH = "dead_letter_growth", "Dead-letter group grows"
        SILENCE = "silence", "System silent"
        RECONCILIATION = "reconciliation", "Reconciliation exceptions above N"

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    enabled = models.BooleanField(default=True)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.WARNING)
    plant = models.ForeignKey(
        Plant, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        help_text="Empty: every plant, each on its own.",
    )  # fmt: skip
    flow = models.ForeignKey(
        Flow, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        help_text="Empty: every flow.",
    )  # fmt: skip
    system = models.ForeignKey(
        "integration_hub.System", null=True, blank=True, on_delete=models.CASCADE,
        related_name="+", help_text="Silence rules: the system that should keep reporting.",
    )  # fmt: skip
    slo = models.ForeignKey(
        SLO, null=True, blank=True, on_delete=models.CASCADE, related_name="alert_rules",
        help_text="SLO burn rules: empty means every SLO.",
    )  # fmt: skip
    threshold_count = models.PositiveIntegerField(
        null=True, blank=True, help_text="N: fires when the count is above this."
    )
    threshold_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="T: stuck oldest older than T; growth or new-group window; silent for T.",
    )
    repeat_interval_seconds = models.PositiveIntegerField(
        default=4 * 3600, help_text="Notify again at most this often while firing."
    )
    resolve_after_seconds = models.PositiveIntegerField(
        default=300, help_text="Hold-down: the condition must stay clear this long to resolve."
    )
    only_in_shifts = models.BooleanField(
        default=False,
        help_text="Silence rules of one plant: only during its shifts (never in planned downtime).",
    )
    muted_until = models.DateTimeField(null=True, blank=True)
    mute_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.name

    def is_muted(self, now):
        return self.muted_until is not None and self.muted_until > now

    def clean(self):
        errors = {}
        kind = self.kind
        if kind == self.Kind.SILENCE:
            if self.system_id is None:
                errors["system"] = "A silence rule names the system that should keep reporting."
            if not self.threshold_seconds:
                errors["threshold_seconds"] = "How long without an event counts as silent."
        elif kind in (
            self.Kind.DEAD_LETTERS_OPEN,
            self.Kind.DEAD_LETTER_GROWTH,
            self.Kind.RECONCILIATION,
        ):
            if self.threshold_count is None:
                errors["threshold_count"] = "N: fires when the count is above this."
            if kind == self.Kind.DEAD_LETTER_GROWTH and not self.threshold_seconds:
                errors["threshold_seconds"] = "T: the window the growth is counted over."
        if self.slo_id is not None and kind not in (
            self.Kind.SLO_FAST_BURN,
            self.Kind.SLO_SLOW_BURN,
        ):
            errors["slo"] = "Only SLO burn rules name an SLO."
        if self.system_id is not None and kind != self.Kind.SILENCE:
            errors["system"] = "Only silence rules name a system."
        if self.repeat_interval_seconds is not None and self.repeat_interval_seconds < 60:
            errors["repeat_interval_seconds"] = "At least 60 seconds."
        if bool(self.mute_reason) and self.muted_until is None:
            errors["muted_until"] = "A mute needs an end time."
        if errors:
            raise ValidationError(errors)


class AlertChannel(models.Model):
    """Where notifications go: an email list or a signed webhook, routed by plant/flow/severity."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook"

    class Preset(models.TextChoices):
        STANDARD = "standard", "Hub JSON (Standard Webhooks)"
        SLACK = "slack", "Slack-compatible"
        TEAMS = "teams", "Teams-compatible"

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    enabled = models.BooleanField(default=True)
    recipients = models.JSONField(default=list, blank=True, help_text="Email addresses.")
    url = models.URLField(max_length=1000, blank=True)
    preset = models.CharField(max_length=16, choices=Preset.choices, default=Preset.STANDARD)
    # Write-only: returned once at creation and on rotation, never rendered back.
    secret = models.CharField(max_length=200, blank=True)
    previous_secret = models.CharField(max_length=200, blank=True)
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    timeout_seconds = models.PositiveSmallIntegerField(default=5)
    max_attempts = models.PositiveSmallIntegerField(default=5)
    plants = models.ManyToManyField(Plant, blank=True, help_text="Empty: every plant.")
    flows = models.ManyToManyField(Flow, blank=True, help_text="Empty: every flow.")
    min_severity = models.CharField(
        max_length=16, choices=Severity.choices, default=Severity.WARNING
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.name} ({self.kind})"

    def signing_secrets(self, now):
        """The current secret, and the previous one while its rotation overlap lasts."""
        secrets_ = [self.secret]
        if self.previous_secret and self.previous_secret_until and self.previous_secret_until > now:
            secrets_.append(self.previous_secret)
        return [s for s in secrets_ if s]


class Alert(models.Model):
    """One firing of a rule for one scope (its dedupe key), from fired to resolved."""

    class State(models.TextChoices):
        FIRING = "firing", "Firing"
        RESOLVED = "resolved", "Resolved"

    rule = models.ForeignKey(AlertRule, null=True, on_delete=models.SET_NULL, related_name="alerts")
    rule_name = models.CharField(max_length=200)
    rule_kind = models.CharField(max_length=32, choices=AlertRule.Kind.choices)
    dedupe_key = models.CharField(max_length=255)
    state = models.CharField(max_length=16, choices=State.choices, default=State.FIRING)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    plant = models.ForeignKey(
        Plant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    flow = models.ForeignKey(
        Flow, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    system = models.ForeignKey(
        "integration_hub.System", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    subject = models.CharField(max_length=200, blank=True, help_text="SLO slug or fingerprint.")
    summary = models.TextField()
    figures = models.JSONField(default=dict)
    since = models.DateTimeField(help_text="When the condition started, as far as known.")
    fired_at = models.DateTimeField()
    last_true_at = models.DateTimeField()
    clear_since = models.DateTimeField(null=True, blank=True, help_text="Hold-down start.")
    resolved_at = models.DateTimeField(null=True, blank=True)
    announced = models.BooleanField(default=False, help_text="A firing notice was sent.")
    last_notified_at = models.DateTimeField(null=True, blank=True)
    repeats = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-fired_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["dedupe_key"], condition=Q(state="firing"), name="uniq_firing_alert"
            )
        ]
        indexes = [models.Index(fields=["state", "-fired_at"], name="alert_state_fired")]

    def __str__(self):
        return f"{self.rule_name} [{self.dedupe_key}] {self.state}"


class AlertTransition(models.Model):
    """A notice-worthy moment of an alert: fired, a repeat while firing, resolved."""

    class Kind(models.TextChoices):
        FIRED = "fired", "Fired"
        REPEAT = "repeat", "Still firing"
        RESOLVED = "resolved", "Resolved"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="transitions")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    number = models.PositiveIntegerField(default=0, help_text="Repeats: 1, 2, ...")
    at = models.DateTimeField()
    summary = models.TextField()
    figures = models.JSONField(default=dict)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["alert", "kind", "number"], name="uniq_alert_transition"
            )
        ]

    def __str__(self):
        return f"{self.alert_id} {self.kind} {self.number}"


class Delivery(models.Model):
    """One notice to one channel: sent by a worker that claims it under a lease; retried."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    alert = models.ForeignKey(
        Alert, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    transition = models.ForeignKey(
        AlertTransition, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="deliveries")
    is_test = models.BooleanField(default=False)
    message_id = models.CharField(
        max_length=64, unique=True, help_text="webhook-id: the same on every attempt."
    )
    target = models.TextField(blank=True, help_text="Whom it went to: addresses or URL.")
    payload = models.JSONField(default=dict, help_text="What was sent (the webhook body).")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["alert", "transition", "channel"], name="uniq_delivery_transition"
            )
        ]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="delivery_state_next")]

    def __str__(self):
        return f"{self.message_id} → {self.channel_id} {self.state}"


class ShiftDigest(models.Model):
    """A shift-change digest sent for one plant and shift end: sent once, whatever the beats."""

    plant = models.ForeignKey(Plant, on_delete=models.CASCADE, related_name="+")
    shift = models.CharField(max_length=64)
    ended_at = models.DateTimeField()
    sent_at = models.DateTimeField(default=timezone.now)
    recipients = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["plant", "shift", "ended_at"], name="uniq_shift_digest")
        ]

    def __str__(self):
        return f"{self.plant_id} {self.shift} {self.ended_at:%Y-%m-%d %H:%M}"
