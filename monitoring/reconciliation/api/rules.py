"""Agreement rules by API (integration admins; people read): which states must agree across
flows that share a business key, and how soon."""

from datetime import timedelta

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from rest_framework import generics, serializers

from integration_hub.api.permissions import ReadOrAdmin
from integration_hub.models import Flow, Plant, System
from integration_hub.roles import is_admin
from monitoring.models import AgreementRule


def _code_field(model, **kwargs):
    return serializers.SlugRelatedField(slug_field="code", queryset=model.objects.all(), **kwargs)


class AgreementRuleSerializer(serializers.ModelSerializer):
    plant = _code_field(Plant, allow_null=True, required=False)
    when_flow = _code_field(Flow)
    when_system = _code_field(System, allow_null=True, required=False)
    then_flow = _code_field(Flow)
    then_system = _code_field(System, allow_null=True, required=False)
    within_seconds = serializers.IntegerField(min_value=1, max_value=30 * 86400, required=False)

    class Meta:
        model = AgreementRule
        fields = [
            "id", "slug", "name", "enabled", "plant", "key", "when_flow", "when_milestone",
            "when_system", "then_flow", "then_milestone", "then_system", "within_seconds",
        ]  # fmt: skip

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["within_seconds"] = int(instance.within.total_seconds())
        return data

    def validate(self, attrs):
        seconds = attrs.pop("within_seconds", None)
        if seconds is not None:
            attrs["within"] = timedelta(seconds=seconds)
        probe = AgreementRule(
            **{
                name: attrs.get(name, getattr(self.instance, name, None))
                for name in ("when_flow", "when_milestone", "then_flow", "then_milestone")
            },
            within=attrs.get("within", getattr(self.instance, "within", timedelta(minutes=15))),
        )
        try:
            probe.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        return attrs


class VisibleRules:
    """Rules for every plant, and those of the reader's plants."""

    permission_classes = [ReadOrAdmin]
    serializer_class = AgreementRuleSerializer

    def get_queryset(self):
        rules = AgreementRule.objects.select_related(
            "plant", "when_flow", "when_system", "then_flow", "then_system"
        )
        if is_admin(self.request.user):
            return rules
        plants = Plant.objects.for_user(self.request.user)
        return rules.filter(Q(plant__isnull=True) | Q(plant__in=plants))


class AgreementRuleList(VisibleRules, generics.ListCreateAPIView):
    pagination_class = None


class AgreementRuleDetail(VisibleRules, generics.RetrieveUpdateDestroyAPIView):
    pass
