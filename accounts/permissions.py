import uuid
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.models import User
from accounts.selectors import admin_organizations
from portalsite.requests import request_memo

_ADMIN_ORGANIZATIONS = "admin_organization_ids"


def request_account(request: HttpRequest | Request) -> User:
    """The signed-in account behind a request that a permission or the admin's login already admitted."""
    assert isinstance(request.user, User), "only for requests an account is signed in to"
    return request.user


def request_admin_organization_ids(
    request: HttpRequest | Request, read: Callable[[], frozenset[uuid.UUID]] | None = None
) -> frozenset[uuid.UUID]:
    """The production organizations the caller's account administers, read once per request. The token
    authentication passes `read` with what it already fetched beside the account (no query of its own)."""

    def query() -> frozenset[uuid.UUID]:
        return frozenset(admin_organizations(user=request_account(request)).values_list("id", flat=True))

    return request_memo(request, _ADMIN_ORGANIZATIONS, read or query)


class IsProductionOrgAdmin(BasePermission):
    """Admins of a production organization only.

    A portal user's token authenticates a portal login, not an account (simplejwt's `TokenUser`): refused here.
    Routes about one portal only need an account here: the portal lookup is scoped to the caller's
    organizations, so a foreign or unknown portal is a 404 either way, never a 403.
    """

    message = "Only admins of a production organization may manage portals."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not isinstance(request.user, User) or not request.user.is_authenticated:
            return False
        if view.kwargs.get(getattr(view, "lookup_url_kwarg", None) or view.lookup_field):
            return True
        return bool(request_admin_organization_ids(request))
