from django.urls import path

from monitoring.reconciliation import views

urlpatterns = [
    path("reconciliation/", views.reconciliation, name="reconciliation"),
]
