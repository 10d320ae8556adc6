from django.urls import path

from monitoring.reconciliation.api import views

urlpatterns = [
    path("api/v1/reconciliation", views.ReconciliationList.as_view(), name="api-reconciliation"),
]
