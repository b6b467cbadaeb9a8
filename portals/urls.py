from django.urls import path
from rest_framework.routers import SimpleRouter

from portals.api.views import PortalViewSet
from portals.views import tls_ask

router = SimpleRouter(trailing_slash=False)
router.register("v1/portal", PortalViewSet, basename="portal")

urlpatterns = [
    path("internal/tls-ask", tls_ask, name="tls-ask"),
    *router.urls,
]
