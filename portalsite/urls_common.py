"""Routes that both the main hosts and portal hosts serve."""

from django.urls import path, re_path

from portalsite.views import healthz, not_found

common_urlpatterns = [
    path("healthz", healthz, name="healthz"),
]

# Unknown paths under the API prefixes answer JSON, even where DEBUG would render an HTML page.
catch_all_urlpatterns = [
    re_path(r"^(?:v1|api)/", not_found),
]
