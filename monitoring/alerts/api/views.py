"""Alert channels and rules for admins; alerts (with their deliveries) for everyone, by plant."""

from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.shortcuts import get_object_or_404
from django.utils import timezone
from rest_framework import permissions, status
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from integration_hub.api.permissions import ReadOrAdmin
from integration_hub.models import Plant
from integration_hub.roles import is_admin, sees_all_plants
from monitoring.alerts.api.serializers import (
    AlertChannelSerializer,
    AlertRuleSerializer,
    alert_data,
    delivery_data,
)
from monitoring.alerts.channels.webhook import new_secret
from monitoring.alerts.delivery import queue_test_delivery
from monitoring.models import Alert, AlertChannel, AlertRule, Delivery

SECRET_OVERLAP = timedelta(hours=24)


class AdminOnly(permissions.BasePermission):
    """Channels hold addresses and webhook URLs (often secrets themselves): admins only."""

    def has_permission(self, request, view):
        return is_admin(request.user)


def rotate_secret(channel, *, now=None):
    """A new signing secret; the previous one keeps signing for 24 h. Returns the new one."""
    now = now or timezone.now()
    channel.previous_secret, channel.previous_secret_until = channel.secret, now + SECRET_OVERLAP
    channel.secret = new_secret()
    channel.save(update_fields=["secret", "previous_secret", "previous_secret_until"])
    return channel.secret


def visible_alerts(user):
    """Alerts of the plants a person may see, and those that span all plants."""
    alerts = Alert.objects.select_related("plant", "flow", "system").prefetch_related(
        "transitions", "deliveries__channel", "deliveries__transition"
    )
    if sees_all_plants(user):
        return alerts
    return alerts.filter(Q(plant__in=Plant.objects.for_user(user)) | Q(plant__isnull=True))


# --- Channels ------------------------------------------------------------------------------------


def channels():
    return AlertChannel.objects.prefetch_related("plants", "flows")


class AlertChannelList(APIView):
    permission_classes = [AdminOnly]

    def get(self, request):
        return Response(AlertChannelSerializer(channels(), many=True).data)

    def post(self, request):
        """Create a channel; a webhook channel's `secret` is in this answer and nowhere else."""
        serializer = AlertChannelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        secret = new_secret() if serializer.validated_data["kind"] == "webhook" else ""
        channel = serializer.save(secret=secret)
        data = AlertChannelSerializer(channel).data
        if secret:
            data["secret"] = secret
        return Response(data, status=status.HTTP_201_CREATED)


class AlertChannelDetail(APIView):
    permission_classes = [AdminOnly]

    def get(self, request, pk):
        return Response(AlertChannelSerializer(get_object_or_404(channels(), pk=pk)).data)

    def patch(self, request, pk):
        return self._update(request, pk, partial=True)

    def put(self, request, pk):
        return self._update(request, pk, partial=False)

    def delete(self, request, pk):
        get_object_or_404(AlertChannel, pk=pk).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _update(self, request, pk, partial):
        serializer = AlertChannelSerializer(
            get_object_or_404(channels(), pk=pk), data=request.data, partial=partial
        )
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data)


class AlertChannelTest(APIView):
    permission_classes = [AdminOnly]

    def post(self, request, pk):
        """Queue a test notice; a worker sends it. Poll the delivery via the channel's tests."""
        channel = get_object_or_404(AlertChannel, pk=pk)
        with transaction.atomic():
            delivery = queue_test_delivery(channel)
        delivery = Delivery.objects.select_related("channel").get(pk=delivery.pk)
        return Response(
            {"delivery": delivery_data(delivery, show_target=True)},
            status=status.HTTP_202_ACCEPTED,
        )

    def get(self, request, pk):
        """The latest test deliveries of this channel, newest first, with their outcome."""
        channel = get_object_or_404(AlertChannel, pk=pk)
        tests = channel.deliveries.filter(is_test=True).select_related("channel")
        return Response([delivery_data(d, show_target=True) for d in tests.order_by("-id")[:20]])


class AlertChannelRotateSecret(APIView):
    permission_classes = [AdminOnly]

    def post(self, request, pk):
        """A new signing secret (returned once); the old one signs too for 24 h."""
        channel = get_object_or_404(AlertChannel, pk=pk)
        if channel.kind != AlertChannel.Kind.WEBHOOK:
            raise ValidationError({"kind": ["Only webhook channels have a signing secret."]})
        secret = rotate_secret(channel)
        return Response(
            {
                "id": channel.id,
                "secret": secret,
                "previous_secret_until": channel.previous_secret_until.isoformat(),
            }
        )


# --- Rules -----------------------------------------------------------------------------------


def rules_for(user):
    rules = AlertRule.objects.select_related("plant", "flow", "system", "slo")
    if sees_all_plants(user):
        return rules
    return rules.filter(Q(plant__in=Plant.objects.for_user(user)) | Q(plant__isnull=True))


class AlertRuleList(APIView):
    permission_classes = [ReadOrAdmin]

    def get(self, request):
        return Response(AlertRuleSerializer(rules_for(request.user), many=True).data)

    def post(self, request):
        serializer = AlertRuleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data, status=status.HTTP_201_CREATED)


class AlertRuleDetail(APIView):
    permission_classes = [ReadOrAdmin]

    def get(self, request, pk):
        return Response(AlertRuleSerializer(get_object_or_404(rules_for(request.user), pk=pk)).data)

    def patch(self, request, pk):
        return self._update(request, pk, partial=True)

    def put(self, request, pk):
        return self._update(request, pk, partial=False)

    def delete(self, request, pk):
        get_object_or_404(AlertRule, pk=pk).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _update(self, request, pk, partial):
        serializer = AlertRuleSerializer(
            get_object_or_404(AlertRule, pk=pk), data=request.data, partial=partial
        )
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data)


# --- Alerts ----------------------------------------------------------------------------------


class NewestFirst(CursorPagination):
    ordering = ("-fired_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def filter_alerts(qs, params):
    """?state=firing|resolved&plant=&flow=&severity=&rule= ; unknown values are 400s."""
    state = params.get("state")
    if state:
        if state not in Alert.State.values:
            raise ValidationError({"state": [f"One of: {', '.join(Alert.State.values)}."]})
        qs = qs.filter(state=state)
    if params.get("severity"):
        qs = qs.filter(severity=params["severity"])
    if params.get("plant"):
        qs = qs.filter(plant__code=params["plant"])
    if params.get("flow"):
        qs = qs.filter(flow__code=params["flow"])
    if params.get("rule"):
        try:
            qs = qs.filter(rule_id=int(params["rule"]))
        except ValueError:
            raise ValidationError({"rule": ["A rule id."]}) from None
    return qs


class AlertList(APIView):
    def get(self, request):
        """Current and past alerts, newest first, each with its transitions and deliveries."""
        qs = filter_alerts(visible_alerts(request.user), request.query_params)
        paginator = NewestFirst()
        page = paginator.paginate_queryset(qs, request, view=self)
        show = is_admin(request.user)
        return paginator.get_paginated_response([alert_data(a, show_targets=show) for a in page])


class AlertDetail(APIView):
    def get(self, request, pk):
        alert = get_object_or_404(visible_alerts(request.user), pk=pk)
        return Response(alert_data(alert, show_targets=is_admin(request.user)))
