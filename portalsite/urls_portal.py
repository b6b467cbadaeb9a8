"""URLconf of portal hosts: requests here run in the portal's own schema."""

from django.urls import include, path

from portalsite.urls_common import catch_all_urlpatterns, common_urlpatterns

handler404 = "portalsite.views.not_found"
handler500 = "portalsite.views.server_error"

urlpatterns = [
    *common_urlpatterns,
    path("", include("customer_portal.urls")),
    path("", include("customer_portal.page_urls")),
    *catch_all_urlpatterns,
]
