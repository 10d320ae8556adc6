from django.urls import path

from monitoring import api

urlpatterns = [
    path("api/v1/slos", api.SLOList.as_view(), name="api-slos"),
    path("api/v1/slos/<int:pk>", api.SLODetail.as_view(), name="api-slo"),
    path("api/v1/stuck", api.StuckList.as_view(), name="api-stuck"),
]
