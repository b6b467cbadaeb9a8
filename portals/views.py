"""Endpoints of the main hosts that are not part of the REST API."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from portals.selectors import domain_routable


@require_GET
def tls_ask(request: HttpRequest) -> JsonResponse:
    """GET /internal/tls-ask?domain=<host>: may the TLS terminator obtain a certificate for this host?

    200 for a portal's default domain or a verified custom domain, else 404 (Caddy's `on_demand_tls
    { ask ... }` contract: any 2xx allows). No authentication: the answer is as public as DNS.
    """
    hostname = request.GET.get("domain", "").strip().lower().rstrip(".")
    if hostname and len(hostname) <= 253 and domain_routable(hostname=hostname) is not None:
        return JsonResponse({"domain": hostname})
    return JsonResponse({"detail": "Not found."}, status=404)
