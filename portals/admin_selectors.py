"""Reads the admin needs that the API's selectors do not cover (operators see every organization)."""

from django.db.models import QuerySet

from accounts.models import Organization, OrgMembership, User
from portals.models import Portal
from portals.selectors import admin_organizations, portal_list_for_admin


def admin_portal_scope(*, user: User) -> QuerySet[Portal]:
    """The portals `user` may manage in the admin: the same ones as on the API (its production
    organizations'), or every real portal for a superuser; never a spare or the public tenant."""
    if user.is_superuser:
        return Portal.objects.filter(is_spare=False, organization__isnull=False)
    return portal_list_for_admin(user=user)


def admin_portal_organizations(*, user: User) -> QuerySet[Organization]:
    """Where `user` may create a portal. A superuser may pick any production organization that has
    an admin: portal_create acts for that admin, as the operator commands do."""
    if user.is_superuser:
        return Organization.objects.filter(
            environment=Organization.Environment.PRODUCTION,
            memberships__role=OrgMembership.Role.ADMIN,
        ).distinct()
    return admin_organizations(user=user)
