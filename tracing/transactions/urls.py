from django.urls import path

from tracing.transactions import views

urlpatterns = [
    path("transactions/", views.transaction_search, name="transaction-search"),
    path(
        "transactions/<str:flow>/<path:correlation_id>/",
        views.transaction_detail,
        name="transaction-detail",
    ),
]
