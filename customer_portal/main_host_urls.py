"""Routes only the main hosts serve: /v1/portal, /v1/audit-events, /v1/webhooks and the TLS terminator's
question (portal hosts answer 404)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from customer_portal.api.portals import PortalViewSet
from events.api.views import AuditEventViewSet
from portals.api.webhooks import WebhookViewSet
from portals.views import tls_ask

router = SimpleRouter(trailing_slash=False)
router.register("v1/portal", PortalViewSet, basename="portal")
router.register("v1/audit-events", AuditEventViewSet, basename="audit-event")
router.register("v1/webhooks", WebhookViewSet, basename="webhook")

urlpatterns = [
    path("internal/tls-ask", tls_ask, name="tls-ask"),
    *router.urls,
]
