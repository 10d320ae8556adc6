from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from rest_framework import serializers

from integration_hub.models import Flow, Plant, RetentionKind, RetentionOverride, System


class PlantSerializer(serializers.ModelSerializer):
    """A plant; `retention` shows the days each kind of its data is kept, and
    `retention_overrides` sets the plant's own ({kind: days}, 0 forever, null: the default)."""

    retention_overrides = serializers.JSONField(required=False)

    class Meta:
        model = Plant
        fields = ["code", "name", "timezone", "retention_overrides"]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        own = {o.kind: o.days for o in instance.retention_overrides.all()}
        data["retention_overrides"] = own
        data["retention"] = {
            kind: own.get(kind, settings.RETENTION_DAYS[kind]) for kind in RetentionKind.values
        }
        return data

    def validate_retention_overrides(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("An object of kind → days (or null).")
        unknown = sorted(set(value) - set(RetentionKind.values))
        if unknown:
            raise serializers.ValidationError(
                f"Unknown kind(s) {', '.join(unknown)}; kinds: {', '.join(RetentionKind.values)}."
            )
        for kind, days in value.items():
            if days is not None and (type(days) is not int or not 0 <= days <= 100_000):
                raise serializers.ValidationError(
                    f"{kind}: days from 0 (forever) to 100000, or null for the default."
                )
        return value

    def create(self, validated_data):
        overrides = validated_data.pop("retention_overrides", {})
        with transaction.atomic():
            plant = super().create(validated_data)
            set_retention(plant, overrides)
        return plant

    def update(self, instance, validated_data):
        overrides = validated_data.pop("retention_overrides", {})
        with transaction.atomic():
            plant = super().update(instance, validated_data)
            set_retention(plant, overrides)
        return plant


def set_retention(plant, overrides):
    """Set the given kinds' days for the plant (null: back to the setting); others stay."""
    for kind, days in overrides.items():
        if days is None:
            RetentionOverride.objects.filter(plant=plant, kind=kind).delete()
        else:
            RetentionOverride.objects.update_or_create(
                plant=plant, kind=kind, defaults={"days": days}
            )


class SystemSerializer(serializers.ModelSerializer):
    replay_auth_value = serializers.CharField(
        write_only=True, required=False, allow_blank=True, max_length=1024
    )
    has_replay_secret = serializers.BooleanField(read_only=True)

    class Meta:
        model = System
        fields = [
            "code",
            "name",
            "kind",
            "replay_url",
            "replay_auth_header",
            "replay_auth_value",
            "has_replay_secret",
        ]


class FlowSerializer(serializers.ModelSerializer):
    source_system = serializers.SlugRelatedField(
        slug_field="code", queryset=System.objects.all(), allow_null=True, required=False
    )
    target_systems = serializers.SlugRelatedField(
        slug_field="code", queryset=System.objects.all(), many=True, required=False
    )
    stuck_after_seconds = serializers.IntegerField(
        min_value=1, max_value=10 * 366 * 24 * 3600, required=False, write_only=True
    )
    reconcile_after_seconds = serializers.IntegerField(
        min_value=1, max_value=366 * 24 * 3600, required=False, write_only=True
    )

    class Meta:
        model = Flow
        fields = [
            "code",
            "name",
            "description",
            "milestones",
            "completing_milestones",
            "stuck_after_seconds",
            "source_system",
            "target_systems",
            "position",
            "fan_out_milestones",
            "reconcile_after_seconds",
        ]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["stuck_after_seconds"] = int(instance.stuck_after.total_seconds())
        data["reconcile_after_seconds"] = int(instance.reconcile_after.total_seconds())
        return data

    def validate(self, attrs):
        for field in ("stuck_after", "reconcile_after"):
            seconds = attrs.pop(f"{field}_seconds", None)
            if seconds is not None:
                attrs[field] = timedelta(seconds=seconds)
        checked = (
            "milestones", "completing_milestones", "stuck_after", "fan_out_milestones",
            "reconcile_after",
        )  # fmt: skip
        values = {field: attrs.get(field, getattr(self.instance, field, None)) for field in checked}
        probe = Flow(**{field: value for field, value in values.items() if value is not None})
        try:
            probe.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        return attrs
