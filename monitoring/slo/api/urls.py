from django.urls import path

from monitoring.slo.api import views

urlpatterns = [
    path("api/v1/slos", views.SLOList.as_view(), name="api-slos"),
    path("api/v1/slos/<int:pk>", views.SLODetail.as_view(), name="api-slo"),
    path("api/v1/stuck", views.StuckList.as_view(), name="api-stuck"),
]
