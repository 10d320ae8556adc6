"""SLO definitions, the outcomes and rollups they are measured from, and status snapshots."""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from integration_hub.models import DeadLetter, Flow, Plant


class SLO(models.Model):
    class Kind(models.TextChoices):
        LATENCY = "latency", "Latency between two milestones"
        SUCCESS = "success", "Share completing without a failure"
        AGE = "age", "Open items older than a threshold"

    class Subject(models.TextChoices):
        TRANSACTIONS = "transactions", "Transactions"
        DEAD_LETTERS = "dead_letters", "Dead letters"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    subject = models.CharField(max_length=16, choices=Subject.choices, default=Subject.TRANSACTIONS)
    flow = models.ForeignKey(
        Flow, null=True, blank=True, on_delete=models.CASCADE, related_name="slos"
    )
    start_milestone = models.CharField(max_length=64, blank=True)
    end_milestones = models.JSONField(
        default=list, blank=True, help_text="Reaching any of these ends the measurement."
    )
    threshold_seconds = models.FloatField(null=True, blank=True)
    objective = models.FloatField(help_text="Share of good events wanted, e.g. 0.99.")
    window_days = models.PositiveSmallIntegerField(default=28)
    plant = models.ForeignKey(
        Plant, null=True, blank=True, on_delete=models.CASCADE, help_text="Empty: all plants."
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "SLO"

    def __str__(self):
        return self.name

    def clean(self):
        errors = {}
        if not 0 < (self.objective or 0) < 1:
            errors["objective"] = "Between 0 and 1 (exclusive), e.g. 0.99."
        if not 1 <= (self.window_days or 0) <= 90:
            errors["window_days"] = "From 1 to 90 days."
        needs_threshold = self.kind in (self.Kind.LATENCY, self.Kind.AGE)
        if needs_threshold and not (self.threshold_seconds and self.threshold_seconds > 0):
            errors["threshold_seconds"] = f"A {self.kind} SLO needs a positive threshold."
        if self.subject == self.Subject.DEAD_LETTERS:
            if self.kind != self.Kind.AGE:
                errors["kind"] = "Dead letters are measured by age."
        elif self.flow_id is None:
            errors["flow"] = "A transaction SLO needs a flow."
        elif self.kind in (self.Kind.LATENCY, self.Kind.AGE):
            milestones = self.flow.milestones
            start = self.start_milestone or milestones[0]
            if start not in milestones:
                errors["start_milestone"] = (
                    f"Not a milestone of {self.flow.code}: {', '.join(milestones)}."
                )
            ends = self.end_milestones or self.flow.completing_milestones
            if not isinstance(ends, list) or not set(ends) <= set(milestones):
                errors["end_milestones"] = (
                    f"Milestones of {self.flow.code}: {', '.join(milestones)}."
                )
            elif start in milestones and min(milestones.index(e) for e in ends) <= milestones.index(
                start
            ):
                errors["end_milestones"] = "Must come after the start milestone."
        if errors:
            raise ValidationError(errors)

    @property
    def start(self):
        return self.start_milestone or self.flow.milestones[0]

    @property
    def ends(self):
        return tuple(self.end_milestones or self.flow.completing_milestones)


class SLOThreshold(models.Model):
    """A plant's own threshold for an SLO (a slower line, a remote warehouse)."""

    slo = models.ForeignKey(SLO, on_delete=models.CASCADE, related_name="thresholds")
    plant = models.ForeignKey(Plant, on_delete=models.CASCADE)
    threshold_seconds = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["slo", "plant"], name="uniq_slo_threshold")]

    def __str__(self):
        return f"{self.slo} @ {self.plant.code}: {self.threshold_seconds:g} s"


class Outcome(models.Model):
    """How one item (a transaction or a dead letter) counts for one SLO: once, good or bad.

    `pending` items have not yet counted: their end is not reached and the threshold has not
    passed; they count (bad) at `at` if nothing arrives before. Rollups sum the counted ones.
    """

    slo = models.ForeignKey(SLO, on_delete=models.CASCADE, related_name="+")
    transaction = models.ForeignKey(
        "tracing.Transaction", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    dead_letter = models.ForeignKey(
        DeadLetter, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    plant = models.ForeignKey(Plant, on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField()
    minute = models.DateTimeField(help_text="`at` truncated to the minute: its rollup row.")
    good = models.BooleanField()
    latency = models.FloatField(null=True, blank=True)
    pending = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["slo", "transaction"], name="uniq_outcome_txn"),
            models.UniqueConstraint(fields=["slo", "dead_letter"], name="uniq_outcome_dl"),
        ]
        indexes = [
            models.Index(fields=["slo", "plant", "minute"], name="outcome_slo_plant_minute"),
            models.Index(fields=["pending", "at"], name="outcome_pending_at"),
        ]

    def __str__(self):
        item = self.transaction_id or self.dead_letter_id
        return f"{self.slo_id}:{item} {'good' if self.good else 'bad'}"


class RollupCounts(models.Model):
    """Good and total counts and a latency histogram, for one SLO and plant over some time.

    The histogram uses fixed log-spaced buckets (monitoring/histogram.py), so histograms can be
    summed across minutes and plants and percentiles read from the sum.
    """

    slo = models.ForeignKey(SLO, on_delete=models.CASCADE, related_name="+")
    plant = models.ForeignKey(Plant, on_delete=models.CASCADE, related_name="+")
    good = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    histogram = models.JSONField(default=dict)

    class Meta:
        abstract = True


class Rollup(RollupCounts):
    """Per minute, SLO and plant."""

    minute = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["slo", "plant", "minute"], name="uniq_rollup_minute")
        ]
        indexes = [models.Index(fields=["slo", "minute"], name="rollup_slo_minute")]

    def __str__(self):
        return (
            f"{self.slo_id}@{self.plant_id} {self.minute:%Y-%m-%d %H:%M} {self.good}/{self.total}"
        )


class HourRollup(RollupCounts):
    """Per hour, SLO and plant: the sum of that hour's minute rollups.

    Kept in step with the minute rows by monitoring.outcomes.recompute_rollups, so reads over
    days (dashboards, series, percentiles) sum 24 rows a day instead of 1,440 (monitoring/
    rollups.py reads whole hours here and the partial hours at the edges from Rollup).
    """

    hour = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["slo", "plant", "hour"], name="uniq_rollup_hour")
        ]
        indexes = [models.Index(fields=["slo", "hour"], name="rollup_slo_hour")]

    def __str__(self):
        return f"{self.slo_id}@{self.plant_id} {self.hour:%Y-%m-%d %H}h {self.good}/{self.total}"


class SLOStatus(models.Model):
    """The latest evaluation of an SLO for one plant, or overall (plant empty)."""

    class Status(models.TextChoices):
        OK = "ok", "OK"
        WARNING = "warning", "Warning"
        BREACHING = "breaching", "Breaching"

    slo = models.ForeignKey(SLO, on_delete=models.CASCADE, related_name="statuses")
    plant = models.ForeignKey(
        Plant, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    good = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    attainment = models.FloatField(null=True, blank=True)
    error_budget_total = models.FloatField(default=0, help_text="Bad events the window allows.")
    error_budget_remaining = models.FloatField(default=1, help_text="Share of the budget left.")
    burn_rates = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OK)
    evaluated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["slo"], condition=Q(plant__isnull=True), name="uniq_status_overall"
            ),
            models.UniqueConstraint(
                fields=["slo", "plant"], condition=Q(plant__isnull=False), name="uniq_status_plant"
            ),
        ]

    def __str__(self):
        return f"{self.slo} @ {self.plant_id or 'all'}: {self.status}"

    @property
    def bad(self):
        return self.total - self.good

    @property
    def error_budget_remaining_events(self):
        return self.error_budget_total - self.bad


class StuckSummary(models.Model):
    """Per flow and plant: how many transactions are stuck and since when the oldest."""

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="+")
    plant = models.ForeignKey(Plant, on_delete=models.CASCADE, related_name="+")
    count = models.PositiveIntegerField()
    oldest_since = models.DateTimeField()
    evaluated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["flow", "plant"], name="uniq_stuck_summary")]

    def __str__(self):
        return f"{self.flow_id}@{self.plant_id}: {self.count}"


class Watermark(models.Model):
    """Where a periodic job got to (e.g. transactions updated up to this time)."""

    name = models.CharField(max_length=64, unique=True)
    at = models.DateTimeField()

    def __str__(self):
        return f"{self.name}: {self.at}"


# --- Alerts ---------------------------------------------------------------------------------


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
        elif kind in (self.Kind.DEAD_LETTERS_OPEN, self.Kind.DEAD_LETTER_GROWTH):
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
