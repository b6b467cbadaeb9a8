"""URLconf of the bench server's main hosts: the project's own, plus one bare view to compare against.

Only bench.server_settings points PUBLIC_SCHEMA_URLCONF here; the application never serves it.
"""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from portalsite import urls as main_urls

handler404 = main_urls.handler404
handler500 = main_urls.handler500


def bare(request: HttpRequest) -> JsonResponse:
    """The floor of the throughput figures: the same server, WSGI stack and middleware, no database access."""
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/bare", bare, name="bench-bare"), *main_urls.urlpatterns]
