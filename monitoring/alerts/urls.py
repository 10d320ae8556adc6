from django.urls import path

from monitoring.alerts import views

urlpatterns = [
    path("alerts/", views.alert_history, name="alert-history"),
]
