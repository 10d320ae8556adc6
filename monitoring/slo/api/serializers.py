from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from integration_hub.models import Flow, Plant
from monitoring.models import SLO


def status_data(slo, status, plant=None):
    """One item of GET /api/v1/slos: an SLO's current status for one scope."""
    plant = status.plant if status is not None else plant
    threshold = slo.threshold_seconds
    if plant is not None:
        threshold = slo.plant_thresholds.get(plant.id, threshold)
    data = {
        "id": slo.id,
        "slug": slo.slug,
        "name": slo.name,
        "kind": slo.kind,
        "subject": slo.subject,
        "flow": slo.flow.code if slo.flow else None,
        "plant": plant.code if plant else None,
        "objective": slo.objective,
        "threshold_seconds": threshold,
        "window_days": slo.window_days,
        "good": 0,
        "total": 0,
        "attainment": None,
        "error_budget_total": 0.0,
        "error_budget_remaining": 1.0,
        "error_budget_remaining_events": 0.0,
        "burn_rates": {"5m": 0.0, "30m": 0.0, "1h": 0.0, "6h": 0.0, "3d": 0.0},
        "status": "ok",
        "overdue": 0,
        "reason": "Not evaluated yet.",
        "evaluated_at": None,
    }
    if status is not None:
        data.update(
            good=status.good,
            total=status.total,
            attainment=status.attainment,
            error_budget_total=round(status.error_budget_total, 3),
            error_budget_remaining=round(status.error_budget_remaining, 6),
            error_budget_remaining_events=round(status.error_budget_remaining_events, 3),
            burn_rates=status.burn_rates,
            status=status.status,
            overdue=status.overdue,
            reason=status.reason,
            evaluated_at=status.evaluated_at.isoformat(),
        )
    return data


class SLODefinitionSerializer(serializers.ModelSerializer):
    flow = serializers.SlugRelatedField(
        slug_field="code", queryset=Flow.objects.all(), allow_null=True, required=False
    )
    plant = serializers.SlugRelatedField(
        slug_field="code", queryset=Plant.objects.all(), allow_null=True, required=False
    )

    class Meta:
        model = SLO
        fields = [
            "id",
            "slug",
            "name",
            "description",
            "kind",
            "subject",
            "flow",
            "start_milestone",
            "end_milestones",
            "threshold_seconds",
            "objective",
            "window_days",
            "plant",
            "enabled",
        ]

    def validate(self, attrs):
        probe = SLO(**{**self._current(), **attrs})
        try:
            probe.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        return attrs

    def _current(self):
        if self.instance is None:
            return {}
        return {f: getattr(self.instance, f) for f in self.Meta.fields if f != "id"}
