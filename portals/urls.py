from rest_framework.routers import SimpleRouter

from portals.api.views import PortalViewSet

router = SimpleRouter(trailing_slash=False)
router.register("v1/portal", PortalViewSet, basename="portal")

urlpatterns = router.urls
