"""Catalog API for automation: plants, systems and flows by code (admins only)."""

from rest_framework import mixins, routers, viewsets

from integration_hub.api.permissions import IsHubAdmin
from integration_hub.api.serializers import FlowSerializer, PlantSerializer, SystemSerializer
from integration_hub.models import Flow, Plant, System


class Router(routers.SimpleRouter):
    """Routes that answer with or without a trailing slash (/api/v1/systems/MES)."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"


class CatalogViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """List, create, read and update by code. No delete: events and history refer to these."""

    lookup_field = "code"
    lookup_value_regex = "[^/]+"
    permission_classes = [IsHubAdmin]
    pagination_class = None


class PlantViewSet(CatalogViewSet):
    queryset = Plant.objects.prefetch_related("retention_overrides")
    serializer_class = PlantSerializer


class SystemViewSet(CatalogViewSet):
    queryset = System.objects.all()
    serializer_class = SystemSerializer


class FlowViewSet(CatalogViewSet):
    queryset = Flow.objects.select_related("source_system").prefetch_related("target_systems")
    serializer_class = FlowSerializer
