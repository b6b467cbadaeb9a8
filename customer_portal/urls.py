"""API routes that both the main hosts and portal hosts serve: /v1/auth and /v1/customer-portal."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from customer_portal.api import views
from customer_portal.api.auth import AuthViewSet

PREFIX = "v1/customer-portal"

router = SimpleRouter(trailing_slash=False)
router.register(f"{PREFIX}/users", views.PortalUserViewSet, basename="customer-portal-user")
router.register(f"{PREFIX}/invitations", views.InvitationViewSet, basename="customer-portal-invitation")
router.register(f"{PREFIX}/sessions", views.PortalSessionViewSet, basename="customer-portal-session")
router.register(f"{PREFIX}/features", views.FeatureViewSet, basename="customer-portal-feature")
router.register(f"{PREFIX}/audit-events", views.PortalAuditEventViewSet, basename="customer-portal-audit-event")
router.register(f"{PREFIX}/me/sessions", views.MeSessionViewSet, basename="customer-portal-me-session")

urlpatterns = [
    path("v1/auth/token", AuthViewSet.as_view({"post": "token"}), name="auth-token"),
    path("v1/auth/token/refresh", AuthViewSet.as_view({"post": "refresh"}), name="auth-token-refresh"),
    path("v1/auth/logout", AuthViewSet.as_view({"post": "logout"}), name="auth-logout"),
    path("v1/auth/password/forgot", AuthViewSet.as_view({"post": "password_forgot"}), name="auth-password-forgot"),
    path("v1/auth/password/reset", AuthViewSet.as_view({"post": "password_reset"}), name="auth-password-reset"),
    path("v1/auth/email-link", AuthViewSet.as_view({"post": "email_link"}), name="auth-email-link"),
    path(
        "v1/auth/email-link/verify", AuthViewSet.as_view({"post": "email_link_verify"}), name="auth-email-link-verify"
    ),
    path(
        f"{PREFIX}/config",
        views.PortalConfigViewSet.as_view({"get": "retrieve", "patch": "partial_update"}),
        name="customer-portal-config",
    ),
    path(f"{PREFIX}/stats", views.PortalStatsViewSet.as_view({"get": "retrieve"}), name="customer-portal-stats"),
    path(f"{PREFIX}/me", views.MeViewSet.as_view({"get": "retrieve"}), name="customer-portal-me"),
    *router.urls,
]
