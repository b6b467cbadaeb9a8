"""API routes only the main hosts serve: /v1/portal (portal hosts answer 404 there)."""

from rest_framework.routers import SimpleRouter

from customer_portal.api.portals import PortalViewSet

router = SimpleRouter(trailing_slash=False)
router.register("v1/portal", PortalViewSet, basename="portal")

urlpatterns = router.urls
