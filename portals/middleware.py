from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import set_urlconf
from django_tenants.middleware.main import TenantMainMiddleware

from portals.routing import portal_for_host, stale_route_response
from portalsite.db import tenant_connection


class PortalRoutingMiddleware(TenantMainMiddleware):
    """Pick the schema from the Host header.

    MAIN_HOSTS serve the public schema without a query; any other host must be a
    portal's domain (cached: no query once warm). An unknown or disallowed host is a
    JSON 404, never an error page.
    """

    @staticmethod
    def hostname_from_request(request: HttpRequest) -> str:
        # django-tenants strips "www." here, which would route `www.x` to whoever registered `x`:
        # a request goes to the portal that registered exactly its host.
        return request.get_host().split(":")[0].lower()

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        tenant_connection.set_schema_to_public()  # every request starts on public, whatever came before
        try:
            hostname = self.hostname_from_request(request)
        except DisallowedHost:
            return _host_not_found()
        if hostname in settings.MAIN_HOSTS:
            request.tenant = tenant_connection.tenant  # type: ignore[attr-defined]  # django-tenants' attribute
            request.urlconf = settings.PUBLIC_SCHEMA_URLCONF
            set_urlconf(request.urlconf)
            return None
        portal = portal_for_host(hostname)
        if portal is None:
            return _host_not_found()
        portal.domain_url = hostname
        request.tenant = portal  # type: ignore[attr-defined]
        tenant_connection.set_tenant(portal)
        self.setup_url_routing(request)
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A route cached before its portal was deleted (another instance) is a 404, not a 500: a portal host's,
        or on a main host the portal named by X-Portal-ID (the connection is then on its schema)."""
        hostname = getattr(getattr(request, "tenant", None), "domain_url", None)
        return stale_route_response(exception, hostname or None)


def _host_not_found() -> JsonResponse:
    return JsonResponse({"detail": "Not found."}, status=404)
