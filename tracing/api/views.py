"""Reading transactions: the filtered list, and one transaction with its events."""

from django.http import Http404
from django.utils import timezone
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from integration_hub.models import SeveralPlants
from tracing.api.serializers import event_data, transaction_data
from tracing.models import Transaction
from tracing.transactions import selectors


class NewestFirst(CursorPagination):
    ordering = ("-last_seen", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def filters_from(params):
    try:
        return {
            "plant": params.get("plant"),
            "flow": params.get("flow"),
            "system": params.get("system"),
            "state": params.get("state"),
            "since": selectors.parse_time("from", params.get("from")),
            "until": selectors.parse_time("to", params.get("to")),
            "correlation_id": params.get("correlation_id"),
            "key": params.get("key"),
            "q": params.get("q"),
        }
    except selectors.InvalidFilter as exc:
        raise ValidationError({exc.field: [str(exc)]}) from None


class TransactionList(APIView):
    def get(self, request):
        try:
            qs = selectors.search_transactions(
                user=request.user, **filters_from(request.query_params)
            )
        except selectors.InvalidFilter as exc:
            raise ValidationError({exc.field: [str(exc)]}) from None
        paginator = NewestFirst()
        page = paginator.paginate_queryset(qs, request, view=self)
        now = timezone.now()
        return paginator.get_paginated_response([transaction_data(t, now) for t in page])


class TransactionDetail(APIView):
    def get(self, request, flow, correlation_id):
        try:
            txn = selectors.get_transaction(
                flow=flow,
                correlation_id=correlation_id,
                user=request.user,
                plant=request.query_params.get("plant"),
            )
        except Transaction.DoesNotExist:
            raise Http404("No such transaction.") from None
        except SeveralPlants as exc:
            raise ValidationError(
                {"plant": [f"Plants {exc} each have this transaction; choose one with ?plant=."]}
            ) from None
        data = transaction_data(txn)
        data["events"] = [event_data(e) for e in selectors.transaction_events(txn)]
        data["related"] = [
            {"flow": t.flow.code, "correlation_id": t.correlation_id, "state": t.current_state()}
            for t in selectors.journey(txn, user=request.user)
        ]
        return Response(data)
