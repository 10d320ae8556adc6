from django.conf import settings
from django.urls import include, path
from django.utils.csp import CSP
from django.views.decorators.csp import csp_override
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from integration_hub.api import calendars, people, views

# Swagger UI and Redoc (styled-components) add their styles at run time: these two pages, which
# show no plant data, allow inline styles; their scripts stay our own static files.
docs_page = csp_override({**settings.SECURE_CSP, "style-src": [CSP.SELF, CSP.UNSAFE_INLINE]})

router = views.Router()
router.register("plants", views.PlantViewSet, basename="plant")
router.register("systems", views.SystemViewSet, basename="system")
router.register("flows", views.FlowViewSet, basename="flow")

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "api/docs/",
        docs_page(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    path(
        "api/redoc/",
        docs_page(SpectacularRedocView.as_view(url_name="api-schema")),
        name="api-redoc",
    ),
    path("api/v1/users", people.UserList.as_view(), name="api-users"),
    path("api/v1/plants/<str:code>/members", people.MemberList.as_view(), name="api-members"),
    path(
        "api/v1/plants/<str:code>/members/<str:username>",
        people.Member.as_view(),
        name="api-member",
    ),
    path("api/v1/plants/<str:code>/shifts", calendars.Shifts.as_view(), name="api-shifts"),
    path("api/v1/plants/<str:code>/downtime", calendars.Downtimes.as_view(), name="api-downtimes"),
    path(
        "api/v1/plants/<str:code>/downtime/<int:pk>",
        calendars.DowntimeDetail.as_view(),
        name="api-downtime",
    ),
    path("api/v1/api-keys", people.ApiKeyList.as_view(), name="api-keys"),
    path("api/v1/api-keys/<int:pk>", people.ApiKeyDetail.as_view(), name="api-key"),
    path("api/v1/api-keys/<int:pk>/revoke", people.ApiKeyRevoke.as_view(), name="api-key-revoke"),
    path("api/v1/", include(router.urls)),
]
