from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from integration_hub.api import people, views

router = views.Router()
router.register("plants", views.PlantViewSet, basename="plant")
router.register("systems", views.SystemViewSet, basename="system")
router.register("flows", views.FlowViewSet, basename="flow")

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("api/v1/users", people.UserList.as_view(), name="api-users"),
    path("api/v1/plants/<str:code>/members", people.MemberList.as_view(), name="api-members"),
    path(
        "api/v1/plants/<str:code>/members/<str:username>",
        people.Member.as_view(),
        name="api-member",
    ),
    path("api/v1/api-keys", people.ApiKeyList.as_view(), name="api-keys"),
    path("api/v1/api-keys/<int:pk>", people.ApiKeyDetail.as_view(), name="api-key"),
    path("api/v1/api-keys/<int:pk>/revoke", people.ApiKeyRevoke.as_view(), name="api-key-revoke"),
    path("api/v1/", include(router.urls)),
]
