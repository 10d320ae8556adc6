"""Alert rules, channels and alerts as the API shows them (codes, not ids, for plants/flows)."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.utils import timezone
from rest_framework import serializers

from integration_hub.models import Flow, Plant, System
from monitoring.models import SLO, AlertChannel, AlertRule


def _clean(model, instance, fields, attrs):
    """Run the model's clean() on the row as it would be saved; errors as DRF errors."""
    current = {} if instance is None else {f: getattr(instance, f) for f in fields}
    probe = model(**{**current, **attrs})
    try:
        probe.clean()
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.message_dict) from exc


class AlertRuleSerializer(serializers.ModelSerializer):
    plant = serializers.SlugRelatedField(
        slug_field="code", queryset=Plant.objects.all(), allow_null=True, required=False
    )
    flow = serializers.SlugRelatedField(
        slug_field="code", queryset=Flow.objects.all(), allow_null=True, required=False
    )
    system = serializers.SlugRelatedField(
        slug_field="code", queryset=System.objects.all(), allow_null=True, required=False
    )
    slo = serializers.SlugRelatedField(
        slug_field="slug", queryset=SLO.objects.all(), allow_null=True, required=False
    )
    muted = serializers.SerializerMethodField()

    class Meta:
        model = AlertRule
        fields = [
            "id",
            "name",
            "kind",
            "enabled",
            "severity",
            "plant",
            "flow",
            "system",
            "slo",
            "threshold_count",
            "threshold_seconds",
            "repeat_interval_seconds",
            "resolve_after_seconds",
            "only_in_shifts",
            "muted_until",
            "mute_reason",
            "muted",
            "created_at",
        ]
        read_only_fields = ["created_at"]

    def get_muted(self, rule):
        return rule.is_muted(timezone.now())

    def validate(self, attrs):
        fields = [f for f in self.Meta.fields if f not in ("id", "muted", "created_at")]
        _clean(AlertRule, self.instance, fields, attrs)
        return attrs


class AlertChannelSerializer(serializers.ModelSerializer):
    """The signing secret is never read back: it is returned once, at creation and rotation."""

    plants = serializers.SlugRelatedField(
        slug_field="code", queryset=Plant.objects.all(), many=True, required=False
    )
    flows = serializers.SlugRelatedField(
        slug_field="code", queryset=Flow.objects.all(), many=True, required=False
    )
    recipients = serializers.ListField(
        child=serializers.CharField(max_length=254), required=False, max_length=50
    )
    has_secret = serializers.SerializerMethodField()

    class Meta:
        model = AlertChannel
        fields = [
            "id",
            "name",
            "kind",
            "enabled",
            "url",
            "recipients",
            "preset",
            "plants",
            "flows",
            "min_severity",
            "timeout_seconds",
            "max_attempts",
            "has_secret",
            "previous_secret_until",
            "created_at",
        ]
        read_only_fields = ["previous_secret_until", "created_at"]

    def get_has_secret(self, channel):
        return bool(channel.secret)

    def validate_recipients(self, value):
        for address in value:
            try:
                validate_email(address)
            except DjangoValidationError:
                raise serializers.ValidationError(f"{address!r} is not an email address.") from None
        return value

    def validate_timeout_seconds(self, value):
        if not 1 <= value <= 30:
            raise serializers.ValidationError("From 1 to 30 seconds.")
        return value

    def validate_max_attempts(self, value):
        if not 1 <= value <= 20:
            raise serializers.ValidationError("From 1 to 20.")
        return value

    def validate(self, attrs):
        def value(name, default=None):
            if name in attrs:
                return attrs[name]
            return getattr(self.instance, name) if self.instance else default

        kind = value("kind")
        if kind == AlertChannel.Kind.WEBHOOK:
            if not value("url"):
                raise serializers.ValidationError({"url": ["A webhook channel needs a URL."]})
            if not str(value("url")).startswith(("http://", "https://")):
                raise serializers.ValidationError({"url": ["Use an http:// or https:// URL."]})
        elif kind == AlertChannel.Kind.EMAIL and not value("recipients", []):
            raise serializers.ValidationError(
                {"recipients": ["An email channel needs at least one address."]}
            )
        if self.instance is not None and "kind" in attrs and attrs["kind"] != self.instance.kind:
            raise serializers.ValidationError({"kind": ["Create a new channel to change kind."]})
        return attrs


def delivery_data(delivery, *, show_target):
    data = {
        "id": delivery.id,
        "transition": delivery.transition.kind if delivery.transition_id else "test",
        "channel": {
            "id": delivery.channel_id,
            "name": delivery.channel.name,
            "kind": delivery.channel.kind,
        },
        "state": delivery.state,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
        "response_status": delivery.response_status,
        "message_id": delivery.message_id,
        "created_at": delivery.created_at.isoformat(),
        "next_attempt_at": delivery.next_attempt_at.isoformat(),
        "sent_at": delivery.sent_at.isoformat() if delivery.sent_at else None,
    }
    if show_target:
        data["target"] = delivery.target
    return data


def alert_data(alert, *, show_targets=False):
    """One alert with its transitions and every delivery (to whom, outcome)."""
    return {
        "id": alert.id,
        "rule": {"id": alert.rule_id, "name": alert.rule_name, "kind": alert.rule_kind},
        "dedupe_key": alert.dedupe_key,
        "state": alert.state,
        "severity": alert.severity,
        "plant": alert.plant.code if alert.plant else None,
        "flow": alert.flow.code if alert.flow else None,
        "system": alert.system.code if alert.system else None,
        "subject": alert.subject,
        "summary": alert.summary,
        "figures": alert.figures,
        "since": alert.since.isoformat(),
        "fired_at": alert.fired_at.isoformat(),
        "last_true_at": alert.last_true_at.isoformat(),
        "clear_since": alert.clear_since.isoformat() if alert.clear_since else None,
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "last_notified_at": alert.last_notified_at.isoformat() if alert.last_notified_at else None,
        "repeats": alert.repeats,
        "transitions": [
            {"kind": t.kind, "number": t.number, "at": t.at.isoformat(), "summary": t.summary}
            for t in alert.transitions.all()
        ],
        "deliveries": [delivery_data(d, show_target=show_targets) for d in alert.deliveries.all()],
    }
