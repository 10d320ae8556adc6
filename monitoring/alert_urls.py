from django.urls import path

from monitoring import alert_api, alert_views

urlpatterns = [
    path("api/v1/alert-channels", alert_api.AlertChannelList.as_view(), name="api-alert-channels"),
    path(
        "api/v1/alert-channels/<int:pk>",
        alert_api.AlertChannelDetail.as_view(),
        name="api-alert-channel",
    ),
    path(
        "api/v1/alert-channels/<int:pk>/test",
        alert_api.AlertChannelTest.as_view(),
        name="api-alert-channel-test",
    ),
    path(
        "api/v1/alert-channels/<int:pk>/rotate-secret",
        alert_api.AlertChannelRotateSecret.as_view(),
        name="api-alert-channel-rotate",
    ),
    path("api/v1/alert-rules", alert_api.AlertRuleList.as_view(), name="api-alert-rules"),
    path("api/v1/alert-rules/<int:pk>", alert_api.AlertRuleDetail.as_view(), name="api-alert-rule"),
    path("api/v1/alerts", alert_api.AlertList.as_view(), name="api-alerts"),
    path("api/v1/alerts/<int:pk>", alert_api.AlertDetail.as_view(), name="api-alert"),
    path("alerts/", alert_views.alert_history, name="alert-history"),
]
