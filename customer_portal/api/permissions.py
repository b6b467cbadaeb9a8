from typing import Any

from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from customer_portal.api.portal import UNKNOWN_PORTAL, request_portal
from portals.selectors import admin_organizations
from portalsite.errors import NotFoundError


def _is_portal_user(request: Request) -> bool:
    return getattr(request._request, "portal_session", None) is not None


def request_is_portal_admin(request: Request) -> bool:
    """Whether the caller administers the request portal's organization (one query, remembered)."""
    cached = getattr(request._request, "_is_portal_admin", None)
    if cached is None:
        portal = request_portal(request._request)
        cached = admin_organizations(user=request.user).filter(id=portal.organization_id).exists()
        request._request._is_portal_admin = cached
    return cached


class IsPortalAdmin(BasePermission):
    """Admins of the portal's (production) organization. Anyone else: a portal user gets 403,
    an outsider 404 (a foreign portal looks exactly like an unknown one)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        request_portal(request._request)  # 404 when no portal is named or it does not exist
        if _is_portal_user(request):
            raise PermissionDenied("Portal users cannot manage the portal.")
        if not request_is_portal_admin(request):
            raise NotFoundError(UNKNOWN_PORTAL)
        return True


class IsPortalMemberOrAdmin(BasePermission):
    """A portal user of this portal (their token was checked against it) or one of its admins."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        request_portal(request._request)
        if _is_portal_user(request) or request_is_portal_admin(request):
            return True
        raise NotFoundError(UNKNOWN_PORTAL)


class IsPortalUser(BasePermission):
    """Only a portal user's own session (e.g. /me); its admins get 403, anyone else 404."""

    message = "Only a portal user's token (from logging in on the portal's host) can do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        request_portal(request._request)
        if _is_portal_user(request) or request_is_portal_admin(request):
            return _is_portal_user(request)
        raise NotFoundError(UNKNOWN_PORTAL)
