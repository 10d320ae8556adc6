from django.urls import path

from monitoring.reconciliation.api import rules, views

urlpatterns = [
    path("api/v1/reconciliation", views.ReconciliationList.as_view(), name="api-reconciliation"),
    path("api/v1/agreement-rules", rules.AgreementRuleList.as_view(), name="api-agreement-rules"),
    path(
        "api/v1/agreement-rules/<int:pk>",
        rules.AgreementRuleDetail.as_view(),
        name="api-agreement-rule",
    ),
]
