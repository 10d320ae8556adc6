from django.urls import path

from tracing import api, http_ingest, views

urlpatterns = [
    path("api/v1/events", http_ingest.events_endpoint, name="ingest-events"),
    path("api/v1/transactions", api.TransactionList.as_view(), name="api-transactions"),
    path(
        "api/v1/transactions/<str:flow>/<path:correlation_id>",
        api.TransactionDetail.as_view(),
        name="api-transaction",
    ),
    path("transactions/", views.transaction_search, name="transaction-search"),
    path(
        "transactions/<str:flow>/<path:correlation_id>/",
        views.transaction_detail,
        name="transaction-detail",
    ),
]
