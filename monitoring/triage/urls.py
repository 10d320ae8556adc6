from django.urls import path

from monitoring.triage import views

urlpatterns = [
    path("dead-letters/", views.inbox, name="dead-letters"),
    path("dead-letters/counts", views.counts, name="dead-letter-counts"),
    path("dead-letters/bulk/", views.bulk_confirm, name="dead-letter-bulk"),
    path(
        "dead-letters/bulk/<uuid:bulk_id>/",
        views.bulk_progress,
        name="dead-letter-bulk-progress",
    ),
    path("dead-letters/<int:pk>/", views.detail, name="dead-letter"),
    path("dead-letters/<int:pk>/replay/", views.replay_page, name="dead-letter-replay"),
]
