"""A plant's calendar by API: shifts (replaced as a whole) and planned downtime windows.

People who see the plant read; integration admins write. Times without an offset are read in
the plant's zone. A downtime created or deleted asks the workers to recompute the SLO figures
of the span it covers (`monitoring.recompute_downtime`, by name: monitoring is a layer up).
"""

from datetime import UTC

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils.dateparse import parse_datetime
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from integration_hub.calendars import recompute
from integration_hub.models import Downtime, Flow, Plant, Shift
from integration_hub.roles import is_admin


def plant_for(request, code):
    plant = get_object_or_404(Plant.objects.for_user(request.user), code=code)
    if request.method not in ("GET", "HEAD", "OPTIONS") and not is_admin(request.user):
        raise PermissionDenied("Only integration admins change a plant's calendar.")
    return plant


class ShiftSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=64)
    days = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6), min_length=1, max_length=7
    )
    start = serializers.TimeField(format="%H:%M", input_formats=["%H:%M", "%H:%M:%S"])
    end = serializers.TimeField(format="%H:%M", input_formats=["%H:%M", "%H:%M:%S"])

    def validate_days(self, value):
        if len(set(value)) != len(value):
            raise serializers.ValidationError("Each day once.")
        return sorted(value)

    def validate(self, data):
        if data["start"] == data["end"]:
            raise serializers.ValidationError({"end": "A shift needs a length: end ≠ start."})
        return data


def shift_data(shift):
    return {
        "name": shift.name,
        "days": shift.days,
        "start": shift.start.strftime("%H:%M"),
        "end": shift.end.strftime("%H:%M"),
        "overnight": shift.end <= shift.start,
    }


class Shifts(APIView):
    """GET the plant's shifts; PUT replaces them all (an empty list removes them)."""

    permission_classes = [IsAuthenticated]

    def get(self, request, code):
        plant = plant_for(request, code)
        return Response([shift_data(s) for s in plant.shifts.all()])

    def put(self, request, code):
        plant = plant_for(request, code)
        data = ShiftSerializer(data=request.data, many=True)
        data.is_valid(raise_exception=True)
        names = [row["name"] for row in data.validated_data]
        if len(set(names)) != len(names):
            raise serializers.ValidationError({"name": ["Each shift name once per plant."]})
        with transaction.atomic():
            plant.shifts.all().delete()
            Shift.objects.bulk_create(Shift(plant=plant, **row) for row in data.validated_data)
        return Response([shift_data(s) for s in plant.shifts.all()])


class LocalDateTime(serializers.DateTimeField):
    """RFC 3339 with an offset, or a wall-clock time in the plant's zone (a time the clock
    skips at a DST change is refused)."""

    def to_internal_value(self, value):
        zone = self.context["plant"].tzinfo
        self.timezone = zone
        moment = super().to_internal_value(value)
        wall = parse_datetime(value) if isinstance(value, str) else None
        if wall is None or wall.tzinfo is not None:
            return moment
        if moment.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall:
            raise serializers.ValidationError(
                f"{value} does not exist in {zone.key}: the clocks skip it (DST)."
            )
        return moment


class DowntimeSerializer(serializers.Serializer):
    start = LocalDateTime()
    end = LocalDateTime()
    reason = serializers.CharField(max_length=300)
    flows = serializers.ListField(child=serializers.CharField(), required=False, default=list)

    def validate_flows(self, value):
        known = {f.code: f for f in Flow.objects.filter(code__in=value)}
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise serializers.ValidationError(f"Unknown flows: {', '.join(unknown)}.")
        return list(known.values())

    def validate(self, data):
        if data["end"] <= data["start"]:
            raise serializers.ValidationError({"end": "The end must be after the start."})
        if (data["end"] - data["start"]).days > 31:
            raise serializers.ValidationError({"end": "At most 31 days in one window."})
        return data


def downtime_data(row):
    tz = row.plant.tzinfo
    return {
        "id": row.id,
        "plant": row.plant.code,
        "start": row.start.astimezone(tz).isoformat(),
        "end": row.end.astimezone(tz).isoformat(),
        "reason": row.reason,
        "flows": sorted(f.code for f in row.flows.all()),
        "created_at": row.created_at.isoformat(),
        "created_by": row.created_by.get_username() if row.created_by else None,
    }


class Downtimes(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request, code):
        plant = plant_for(request, code)
        rows = plant.downtimes.select_related("plant", "created_by").prefetch_related("flows")
        return Response([downtime_data(r) for r in rows])

    def post(self, request, code):
        plant = plant_for(request, code)
        data = DowntimeSerializer(data=request.data, context={"plant": plant})
        data.is_valid(raise_exception=True)
        flows = data.validated_data.pop("flows")
        with transaction.atomic():
            row = Downtime.objects.create(
                plant=plant, created_by=request.user, **data.validated_data
            )
            row.flows.set(flows)
            recompute(row)
        return Response(downtime_data(row), status=status.HTTP_201_CREATED)


class DowntimeDetail(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request, code, pk):
        plant = plant_for(request, code)
        return Response(downtime_data(get_object_or_404(plant.downtimes, pk=pk)))

    def delete(self, request, code, pk):
        plant = plant_for(request, code)
        row = get_object_or_404(plant.downtimes, pk=pk)
        with transaction.atomic():
            recompute(row)
            row.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
