from django.urls import path, re_path

from integration_hub import dl_api, dl_views

ACTIONS = "replay|discard|resolve|assign|notes|preview"

urlpatterns = [
    path("api/v1/dead-letters", dl_api.DeadLetterList.as_view(), name="api-dead-letters"),
    path("api/v1/dead-letters/bulk", dl_api.Bulk.as_view(), name="api-dead-letters-bulk"),
    path(
        "api/v1/dead-letters/bulk/<uuid:bulk_id>",
        dl_api.BulkDetail.as_view(),
        name="api-dead-letters-bulk-detail",
    ),
    path(
        "api/v1/dead-letters/bulk/<uuid:bulk_id>/cancel",
        dl_api.BulkCancel.as_view(),
        name="api-dead-letters-bulk-cancel",
    ),
    re_path(
        rf"^api/v1/dead-letters/(?P<id>.+)/(?P<action>{ACTIONS})$",
        dl_api.DeadLetterAction.as_view(),
        name="api-dead-letter-action",
    ),
    path(
        "api/v1/dead-letters/<path:id>", dl_api.DeadLetterDetail.as_view(), name="api-dead-letter"
    ),
    path("api/v1/dead-letter-groups", dl_api.GroupList.as_view(), name="api-dead-letter-groups"),
    path("dead-letters/", dl_views.inbox, name="dead-letters"),
    path("dead-letters/counts", dl_views.counts, name="dead-letter-counts"),
    path("dead-letters/bulk/", dl_views.bulk_confirm, name="dead-letter-bulk"),
    path(
        "dead-letters/bulk/<uuid:bulk_id>/",
        dl_views.bulk_progress,
        name="dead-letter-bulk-progress",
    ),
    path("dead-letters/<int:pk>/", dl_views.detail, name="dead-letter"),
    path("dead-letters/<int:pk>/replay/", dl_views.replay_page, name="dead-letter-replay"),
]
