from typing import Any

from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.models import User
from accounts.permissions import request_admin_organization_ids
from customer_portal.api.authentication import request_portal_session
from customer_portal.api.portal import UNKNOWN_PORTAL, request_portal
from portalsite.errors import NotFoundError


def _is_portal_user(request: Request) -> bool:
    return request_portal_session(request) is not None


def request_is_portal_admin(request: Request) -> bool:
    """Whether the caller's account administers the request portal's organization."""
    if not isinstance(request.user, User):
        return False  # a portal login's TokenUser: not an account
    return request_portal(request).organization_id in request_admin_organization_ids(request)


class IsPortalAdmin(BasePermission):
    """Admins of the portal's (production) organization. Anyone else: a portal user gets 403,
    an outsider 404 (a foreign portal looks exactly like an unknown one)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        request_portal(request)  # 404 when no portal is named or it does not exist
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
        request_portal(request)
        if _is_portal_user(request) or request_is_portal_admin(request):
            return True
        raise NotFoundError(UNKNOWN_PORTAL)


class IsPortalUser(BasePermission):
    """Only a portal user's own session (e.g. /me); its admins get 403, anyone else 404."""

    message = "Only a portal user's token (from logging in on the portal's host) can do this."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        request_portal(request)
        if _is_portal_user(request) or request_is_portal_admin(request):
            return _is_portal_user(request)
        raise NotFoundError(UNKNOWN_PORTAL)
