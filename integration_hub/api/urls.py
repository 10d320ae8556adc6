from django.urls import include, path

from integration_hub.api import views

router = views.Router()
router.register("plants", views.PlantViewSet, basename="plant")
router.register("systems", views.SystemViewSet, basename="system")
router.register("flows", views.FlowViewSet, basename="flow")

urlpatterns = [path("api/v1/", include(router.urls))]
