"""Owner rules by API (integration admins): who owns new dead letters of which plant, flow,
error class and target system."""

from django.contrib.auth import get_user_model
from rest_framework import generics, serializers

from integration_hub.api.permissions import IsHubAdmin
from integration_hub.models import Flow, Plant, System
from monitoring.models import OwnerRule
from monitoring.triage.actions import assignable
from tracing.ingest.contract import ERROR_CLASSES


class OwnerRuleSerializer(serializers.ModelSerializer):
    plant = serializers.SlugRelatedField(
        slug_field="code", queryset=Plant.objects.all(), allow_null=True, required=False
    )
    flow = serializers.SlugRelatedField(
        slug_field="code", queryset=Flow.objects.all(), allow_null=True, required=False
    )
    target = serializers.SlugRelatedField(
        slug_field="code", queryset=System.objects.all(), allow_null=True, required=False
    )
    owner = serializers.SlugRelatedField(
        slug_field="username", queryset=get_user_model().objects.filter(is_active=True)
    )
    error_class = serializers.ChoiceField(
        choices=[("", "any"), *((c, c) for c in (*ERROR_CLASSES, "reconciliation"))],
        required=False,
        default="",
    )

    class Meta:
        model = OwnerRule
        fields = ["id", "name", "plant", "flow", "error_class", "target", "owner", "enabled"]

    def validate(self, data):
        plant = data.get("plant", getattr(self.instance, "plant", None))
        owner = data.get("owner", getattr(self.instance, "owner", None))
        plants = [plant] if plant else list(Plant.objects.all())
        if owner is not None and owner not in assignable(plants):
            where = f"plant {plant.code}" if plant else "every plant (the rule names none)"
            raise serializers.ValidationError(
                {"owner": [f"{owner.get_username()} may not triage dead letters of {where}."]}
            )
        return data


class OwnerRuleList(generics.ListCreateAPIView):
    permission_classes = [IsHubAdmin]
    serializer_class = OwnerRuleSerializer
    pagination_class = None
    queryset = OwnerRule.objects.select_related("plant", "flow", "target", "owner")


class OwnerRuleDetail(generics.RetrieveUpdateDestroyAPIView):
    permission_classes = [IsHubAdmin]
    serializer_class = OwnerRuleSerializer
    queryset = OwnerRule.objects.select_related("plant", "flow", "target", "owner")
