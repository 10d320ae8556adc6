"""Triage records: payload edits and bulk actions on dead letters."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from tracing.models import DeadLetter


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


class OwnerRule(models.Model):
    """Who owns new dead letters by plant, flow, error class and target system (empty: any).

    The most specific enabled rule that matches wins (most fields set; then the oldest), e.g.
    master-data errors of P100 to P100's master-data owner, the rest of P100 to its support.
    """

    name = models.CharField(max_length=200)
    plant = models.ForeignKey(
        "integration_hub.Plant", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    flow = models.ForeignKey(
        "integration_hub.Flow", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    error_class = models.CharField(max_length=32, blank=True, help_text="Empty: any class.")
    target = models.ForeignKey(
        "integration_hub.System", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="owner_rules"
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    MATCHED = ("plant_id", "flow_id", "error_class", "target_id")

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"{self.name} → {self.owner}"

    @property
    def specificity(self):
        return sum(1 for name in self.MATCHED if getattr(self, name))

    def matches(self, letter):
        return all(
            not getattr(self, name) or getattr(self, name) == getattr(letter, name)
            for name in self.MATCHED
        )
