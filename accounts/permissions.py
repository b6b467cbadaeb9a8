from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from portals.selectors import admin_organizations


class IsProductionOrgAdmin(BasePermission):
    """Admins of a production organization only.

    Routes about one portal only need a login here: the portal lookup is scoped to the
    caller's organizations, so a foreign or unknown portal is a 404 either way, never a 403.
    """

    message = "Only admins of a production organization may manage portals."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if view.kwargs.get(getattr(view, "lookup_url_kwarg", None) or view.lookup_field):
            return True
        return admin_organizations(user=request.user).exists()
