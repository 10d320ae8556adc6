"""Reconciliation exceptions for other software: GET /api/v1/reconciliation?plant=&state=open."""

from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.views import APIView

from monitoring.reconciliation.selectors import InvalidFilter, exception_data, exceptions_for


class NewestFirst(CursorPagination):
    ordering = ("-since", "-id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class ReconciliationList(APIView):
    def get(self, request):
        """Exceptions newest first; ?plant=&state=open|closed|all (default open)&flow=&rule=."""
        try:
            qs, _ = exceptions_for(request.user, request.query_params)
        except InvalidFilter as exc:
            if str(exc.errors.get("plant", "")).startswith("You are not"):
                raise PermissionDenied(exc.errors["plant"]) from None
            raise ValidationError({k: [v] for k, v in exc.errors.items()}) from None
        paginator = NewestFirst()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response([exception_data(e) for e in page])
