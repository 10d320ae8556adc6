"""Cross-system reconciliation: agreement rules an admin declares, and the exceptions found.

Two kinds of exception:
- fan-out: a flow's fan-out milestone reached some target systems and not others past the
  flow's tolerance (a hold applied in QMS, propagated to ERP and MES, never to WMS);
- agreement: a transaction reached a milestone (the lot was released in QMS) and, past the
  rule's tolerance, no transaction sharing its business key reached the milestone the rule
  expects (the release reached WMS).
"""

from datetime import timedelta
from functools import cached_property
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from integration_hub.models import Flow, Plant, PlantScopedQuerySet, System


class AgreementRule(models.Model):
    """When a transaction of `when_flow` reaches `when_milestone` (at `when_system` if set), a
    transaction of `then_flow` with the same value of business key `key` must have reached
    `then_milestone` (at `then_system` if set) within `within`."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200, help_text="Says the rule as a plant would.")
    enabled = models.BooleanField(default=True)
    plant = models.ForeignKey(
        Plant, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        help_text="Empty: every plant, each on its own.",
    )  # fmt: skip
    key = models.CharField(max_length=64, help_text="The business key both share, e.g. lot.")
    when_flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="+")
    when_milestone = models.CharField(max_length=64)
    when_system = models.ForeignKey(
        System, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        help_text="Empty: reached at any system.",
    )  # fmt: skip
    then_flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="+")
    then_milestone = models.CharField(max_length=64)
    then_system = models.ForeignKey(
        System, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        help_text="Empty: reached at any system.",
    )  # fmt: skip
    within = models.DurationField(default=timedelta(minutes=15))

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.name

    def clean(self):
        errors = {}
        for side in ("when", "then"):
            flow = getattr(self, f"{side}_flow", None) if getattr(self, f"{side}_flow_id") else None
            milestone = getattr(self, f"{side}_milestone")
            if flow is not None and milestone not in flow.milestones:
                errors[f"{side}_milestone"] = (
                    f"Not a milestone of {flow.code}: {', '.join(flow.milestones)}."
                )
        if self.within is not None and self.within <= timedelta(0):
            errors["within"] = "Must be positive."
        if errors:
            raise ValidationError(errors)


class ExceptionQuerySet(PlantScopedQuerySet):
    def open(self):
        return self.filter(state=ReconciliationException.State.OPEN)


class ReconciliationException(models.Model):
    """One transaction that systems disagree on, from `since` until the missing event arrives."""

    class Kind(models.TextChoices):
        FAN_OUT = "fan_out", "Fan-out incomplete"
        AGREEMENT = "agreement", "Systems disagree"

    class State(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    rule = models.CharField(
        max_length=160, help_text="fan_out:<flow>:<milestone> or the agreement rule's slug."
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    agreement = models.ForeignKey(
        AgreementRule, null=True, blank=True, on_delete=models.CASCADE, related_name="exceptions"
    )
    plant = models.ForeignKey(Plant, on_delete=models.CASCADE, related_name="+")
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="+")
    transaction = models.ForeignKey(
        "tracing.Transaction", on_delete=models.CASCADE, related_name="+"
    )
    correlation_id = models.CharField(max_length=128)
    business_keys = models.JSONField(default=dict)
    milestone = models.CharField(max_length=64, help_text="The milestone that did not arrive.")
    reached = models.JSONField(default=list, help_text="Systems that did reach it.")
    missing = models.JSONField(default=list, help_text="Systems that did not.")
    states = models.JSONField(
        default=dict, blank=True, help_text="Agreement rules: system → the state it is in."
    )
    summary = models.TextField()
    since = models.DateTimeField(help_text="When the first system reached it: the clock starts.")
    state = models.CharField(max_length=8, choices=State.choices, default=State.OPEN)
    opened_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by_event = models.CharField(max_length=128, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    updated_at = models.DateTimeField(default=timezone.now)

    objects = ExceptionQuerySet.as_manager()

    # Owner rules match on these (a reconciliation exception has no error class of its own).
    error_class = "reconciliation"

    class Meta:
        ordering = ["-since", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "transaction"],
                condition=Q(state="open"),
                name="uniq_open_exception",
            )
        ]
        indexes = [
            models.Index(fields=["plant", "state", "-since"], name="recon_plant_state"),
            models.Index(fields=["updated_at"], name="recon_updated"),
        ]

    def __str__(self):
        return f"{self.rule} {self.correlation_id} ({self.state})"

    def get_absolute_url(self):
        query = urlencode({"plant": self.plant.code, "flow": self.flow.code, "state": self.state})
        return f"{reverse('reconciliation')}?{query}"

    @property
    def target_id(self):
        """The first missing system, for owner rules by target system."""
        return self.missing_ids[0] if self.missing_ids else None

    @cached_property
    def missing_ids(self):
        codes = dict(System.objects.values_list("code", "id"))
        return [codes[c] for c in self.missing if c in codes]
