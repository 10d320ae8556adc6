"""SLO status, history and stuck transactions for other software; SLO definitions for admins."""

from datetime import timedelta

from django.shortcuts import get_object_or_404
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from integration_hub.access import sees_overall_figures
from integration_hub.api.permissions import ReadOrAdmin
from integration_hub.models import Plant
from monitoring.models import SLO, SLOStatus
from monitoring.slo import figures as slo_eval
from monitoring.slo.api.serializers import SLODefinitionSerializer, status_data
from tracing.api.serializers import transaction_data
from tracing.models import Transaction, TransactionState
from tracing.transactions.selectors import InvalidFilter, parse_time


def slos_with_thresholds():
    slos = list(
        SLO.objects.filter(enabled=True)
        .select_related("flow", "plant")
        .prefetch_related("thresholds")
    )
    for slo in slos:
        slo.plant_thresholds = {t.plant_id: t.threshold_seconds for t in slo.thresholds.all()}
    return slos


class SLOList(APIView):
    permission_classes = [ReadOrAdmin]

    def get(self, request):
        """Current status of every SLO: overall (plant null) and per plant."""
        everything = sees_overall_figures(request.user)
        plants = list(Plant.objects.for_user(request.user))
        statuses = {
            (row.slo_id, row.plant_id): row for row in SLOStatus.objects.select_related("plant")
        }
        items = []
        for slo in slos_with_thresholds():
            if slo.plant_id:
                scopes = [p for p in plants if p.id == slo.plant_id]
            else:
                scopes = ([None] if everything else []) + plants
            for plant in scopes:
                row = statuses.get((slo.id, plant.id if plant else None))
                items.append(status_data(slo, row, plant))
        return Response(items)

    def post(self, request):
        serializer = SLODefinitionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data, status=status.HTTP_201_CREATED)


class SLODetail(APIView):
    permission_classes = [ReadOrAdmin]

    def get(self, request, pk):
        """Status for a scope, with hourly series and (latency kinds) percentiles over a range."""
        slo = next((s for s in slos_with_thresholds() if s.id == int(pk)), None)
        if slo is None:
            slo = get_object_or_404(SLO, pk=pk)
            slo.plant_thresholds = {}
        plant = None
        if request.query_params.get("plant"):
            plant = (
                Plant.objects.for_user(request.user)
                .filter(code=request.query_params["plant"])
                .first()
            )
            if plant is None:
                valid = ", ".join(Plant.objects.values_list("code", flat=True))
                raise ValidationError({"plant": [f"Unknown plant; valid: {valid}."]})
        elif not sees_overall_figures(request.user):
            raise ValidationError(
                {"plant": ["Name one of your plants: the overall figure spans all plants."]}
            )
        now = timezone.now()
        try:
            since = parse_time("from", request.query_params.get("from")) or now - timedelta(
                days=slo.window_days
            )
            until = parse_time("to", request.query_params.get("to")) or now
        except InvalidFilter as exc:
            raise ValidationError({exc.field: [str(exc)]}) from None
        if since >= until:
            raise ValidationError({"from": ["Must be before 'to'."]})
        row = SLOStatus.objects.filter(slo=slo, plant=plant).select_related("plant").first()
        data = status_data(slo, row, plant)
        plant_id = plant.id if plant else None
        data["definition"] = SLODefinitionSerializer(slo).data
        data["range"] = {"from": since.isoformat(), "to": until.isoformat()}
        data["series"] = slo_eval.series(slo, plant_id=plant_id, since=since, until=until)
        if slo.kind in (SLO.Kind.LATENCY, SLO.Kind.AGE):
            data["percentiles"] = slo_eval.latency_percentiles(
                slo, plant_id=plant_id, since=since, until=until
            )
        return Response(data)

    def patch(self, request, pk):
        return self._update(request, pk, partial=True)

    def put(self, request, pk):
        return self._update(request, pk, partial=False)

    def delete(self, request, pk):
        get_object_or_404(SLO, pk=pk).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _update(self, request, pk, partial):
        serializer = SLODefinitionSerializer(
            get_object_or_404(SLO, pk=pk), data=request.data, partial=partial
        )
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data)


class OldestFirst(CursorPagination):
    ordering = ("first_seen", "id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class StuckList(APIView):
    def get(self, request):
        """Stuck transactions, oldest first; ?plant=&flow=."""
        now = timezone.now()
        qs = (
            Transaction.objects.for_user(request.user)
            .in_state(TransactionState.STUCK, now)
            .select_related("flow", "plant")
        )
        if request.query_params.get("plant"):
            qs = qs.filter(plant__code=request.query_params["plant"])
        if request.query_params.get("flow"):
            qs = qs.filter(flow__code=request.query_params["flow"])
        paginator = OldestFirst()
        page = paginator.paginate_queryset(qs, request, view=self)
        results = []
        for txn in page:
            item = transaction_data(txn, now)
            item["stuck_for_seconds"] = int((now - txn.first_seen).total_seconds())
            results.append(item)
        return paginator.get_paginated_response(results)
