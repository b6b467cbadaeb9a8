"""URLconf of the main hosts (MAIN_HOSTS): the public schema."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from portalsite.admin_site import admin_site
from portalsite.urls_common import catch_all_urlpatterns, common_urlpatterns

handler404 = "portalsite.views.not_found"
handler500 = "portalsite.views.server_error"

urlpatterns = [
    *common_urlpatterns,
    path("", include("customer_portal.main_host_urls")),
    path("", include("accounts.urls")),  # before the admin: its password-reset pages live under admin/
    path("admin/", admin_site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("", include("customer_portal.urls")),
    *catch_all_urlpatterns,
]
