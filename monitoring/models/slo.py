"""SLO definitions, per-item outcomes, rollups and status snapshots."""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from integration_hub.models import Flow, Plant
from tracing.models import DeadLetter


class SLO(models.Model):
    class Kind(models.TextChoices):
        LATENCY = "latency", "Latency between two milestones"
        SUCCESS = "success", "Share completing without a failure"
        AGE = "age", "Open items older than a threshold"

    class Subject(models.TextChoices):
        TRANSACTIONS = "transactions", "Transactions"
        DEAD_LETTERS = "dead_letters", "Dead letters"
        RECONCILIATION = "reconciliation", "Reconciliation exceptions"

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
        if self.subject in (self.Subject.DEAD_LETTERS, self.Subject.RECONCILIATION):
            if self.kind != self.Kind.AGE:
                errors["kind"] = f"{self.get_subject_display()} are measured by age."
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
    exception = models.ForeignKey(
        "monitoring.ReconciliationException",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
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
            models.UniqueConstraint(fields=["slo", "exception"], name="uniq_outcome_exception"),
        ]
        indexes = [
            models.Index(fields=["slo", "plant", "minute"], name="outcome_slo_plant_minute"),
            models.Index(fields=["pending", "at"], name="outcome_pending_at"),
            # Items overdue now (counted bad, no end yet): small, follows what is open.
            models.Index(
                fields=["slo", "plant"],
                condition=Q(good=False, latency__isnull=True, pending=False),
                name="outcome_overdue",
            ),
            # The SLO page's worst items, in the order it lists them (never finished first,
            # then slowest): the first of a range are read without sorting every bad one.
            models.Index(
                fields=["slo", "plant", "-latency", "-at"],
                condition=Q(good=False, pending=False),
                include=["minute"],
                name="outcome_worst",
            ),
        ]

    def __str__(self):
        item = self.transaction_id or self.dead_letter_id or self.exception_id
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


class DayRollup(RollupCounts):
    """Per day in the plant's zone, SLO and plant: the sum of the hour rollups that start in
    that day, the way daily charts bucket hours (a 28-day range reads 28 rows, not 672).

    `day` is the first hour starting at or after the plant's local midnight, `next_day` the
    next day's; kept in step with the hours by monitoring.slo.rollups.recompute_days. A read
    uses a row only if both still match the plant's zone and reads the hours otherwise, so a
    missing or stale day (a zone changed since) costs time, never a wrong figure.
    """

    day = models.DateTimeField()
    next_day = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["slo", "plant", "day"], name="uniq_rollup_day")
        ]

    def __str__(self):
        return f"{self.slo_id}@{self.plant_id} {self.day:%Y-%m-%d %H}h+ {self.good}/{self.total}"


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
    overdue = models.PositiveIntegerField(
        default=0, help_text="Age SLOs: items past the threshold and still open now."
    )
    reason = models.CharField(max_length=300, blank=True, help_text="Why the status is what it is.")
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
    def has_figures(self):
        """Something counted in the window, or items overdue now (older than the window)."""
        return bool(self.total or self.overdue)

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
