from django.urls import path

from tracing.api import views
from tracing.ingest import http
from tracing.ingest.otlp import views as otlp

urlpatterns = [
    path("api/v1/events", http.events_endpoint, name="ingest-events"),
    path("v1/traces", otlp.traces_endpoint, name="otlp-traces"),
    path("api/v1/transactions", views.TransactionList.as_view(), name="api-transactions"),
    path(
        "api/v1/transactions/<str:flow>/<path:correlation_id>",
        views.TransactionDetail.as_view(),
        name="api-transaction",
    ),
]
