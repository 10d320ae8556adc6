from django.urls import path

from monitoring.alerts.api import views

urlpatterns = [
    path("api/v1/alert-channels", views.AlertChannelList.as_view(), name="api-alert-channels"),
    path(
        "api/v1/alert-channels/<int:pk>",
        views.AlertChannelDetail.as_view(),
        name="api-alert-channel",
    ),
    path(
        "api/v1/alert-channels/<int:pk>/test",
        views.AlertChannelTest.as_view(),
        name="api-alert-channel-test",
    ),
    path(
        "api/v1/alert-channels/<int:pk>/rotate-secret",
        views.AlertChannelRotateSecret.as_view(),
        name="api-alert-channel-rotate",
    ),
    path("api/v1/alert-rules", views.AlertRuleList.as_view(), name="api-alert-rules"),
    path("api/v1/alert-rules/<int:pk>", views.AlertRuleDetail.as_view(), name="api-alert-rule"),
    path("api/v1/alerts", views.AlertList.as_view(), name="api-alerts"),
    path("api/v1/alerts/<int:pk>", views.AlertDetail.as_view(), name="api-alert"),
]
