from datetime import timedelta

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from integration_hub.models import Flow, Plant, System


class PlantSerializer(serializers.ModelSerializer):
    class Meta:
        model = Plant
        fields = ["code", "name", "timezone"]


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
        ]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["stuck_after_seconds"] = int(instance.stuck_after.total_seconds())
        return data

    def validate(self, attrs):
        seconds = attrs.pop("stuck_after_seconds", None)
        if seconds is not None:
            attrs["stuck_after"] = timedelta(seconds=seconds)
        probe = Flow(
            **{
                field: attrs.get(field, getattr(self.instance, field, None))
                for field in ("milestones", "completing_milestones", "stuck_after")
            }
        )
        try:
            probe.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        return attrs
