from django.urls import path, re_path

from monitoring.triage.api import owner_rules, views

ACTIONS = "replay|discard|resolve|assign|notes|preview"

urlpatterns = [
    path("api/v1/dead-letters", views.DeadLetterList.as_view(), name="api-dead-letters"),
    path("api/v1/dead-letters/bulk", views.Bulk.as_view(), name="api-dead-letters-bulk"),
    path(
        "api/v1/dead-letters/bulk/<uuid:bulk_id>",
        views.BulkDetail.as_view(),
        name="api-dead-letters-bulk-detail",
    ),
    path(
        "api/v1/dead-letters/bulk/<uuid:bulk_id>/cancel",
        views.BulkCancel.as_view(),
        name="api-dead-letters-bulk-cancel",
    ),
    re_path(
        rf"^api/v1/dead-letters/(?P<id>.+)/(?P<action>{ACTIONS})$",
        views.DeadLetterAction.as_view(),
        name="api-dead-letter-action",
    ),
    path("api/v1/dead-letters/<path:id>", views.DeadLetterDetail.as_view(), name="api-dead-letter"),
    path("api/v1/dead-letter-groups", views.GroupList.as_view(), name="api-dead-letter-groups"),
    path("api/v1/owner-rules", owner_rules.OwnerRuleList.as_view(), name="api-owner-rules"),
    path(
        "api/v1/owner-rules/<int:pk>",
        owner_rules.OwnerRuleDetail.as_view(),
        name="api-owner-rule",
    ),
]
