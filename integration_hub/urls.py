"""The root urlconf: the one place (with Celery's task discovery) that sees every layer."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from integration_hub import health, signin
from integration_hub.errors import not_found

handler404 = not_found

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("accounts/login/", signin.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # 1. catalog
    path("", include("integration_hub.api.urls")),
    # 2. what happened
    path("", include("tracing.api.urls")),
    path("", include("tracing.transactions.urls")),
    # 3. watching and acting
    path("", include("monitoring.dashboards.urls")),
    path("", include("monitoring.slo.api.urls")),
    path("", include("monitoring.triage.api.urls")),
    path("", include("monitoring.triage.urls")),
    path("", include("monitoring.reconciliation.api.urls")),
    path("", include("monitoring.reconciliation.urls")),
    path("", include("monitoring.alerts.api.urls")),
    path("", include("monitoring.alerts.urls")),
    path("", include("monitoring.metrics.urls")),
]
