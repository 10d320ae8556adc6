from django.urls import path

from monitoring.dashboards import home, views

urlpatterns = [
    path("", home.home, name="home"),
    path("plants/<str:code>/", views.plant_overview, name="plant-overview"),
    path("plants/<str:code>/wall/", views.plant_wall, name="plant-wall"),
    path("plants/<str:code>/slos/<slug:slug>/", views.plant_slo, name="plant-slo"),
]
