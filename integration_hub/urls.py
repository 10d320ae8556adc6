from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from integration_hub import api, health, views

router = api.Router()
router.register("plants", api.PlantViewSet, basename="plant")
router.register("systems", api.SystemViewSet, basename="system")
router.register("flows", api.FlowViewSet, basename="flow")

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", include(router.urls)),
    path("", include("tracing.urls")),
    path("", include("integration_hub.dl_urls")),
    path("", include("monitoring.urls")),
    path("", include("monitoring.alert_urls")),
    path("", include("monitoring.page_urls")),
]
