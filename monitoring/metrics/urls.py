from django.urls import path

from monitoring.metrics import views

urlpatterns = [path("metrics", views.metrics_endpoint, name="metrics")]
