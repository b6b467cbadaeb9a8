import uuid

from django.db.models import QuerySet

from accounts.errors import AccountsError
from accounts.models import Organization, OrgMembership, User


def organization_get_by_ref(*, ref: str) -> Organization | None:
    """An organization by id or slug (operators type either)."""
    try:
        return Organization.objects.filter(id=uuid.UUID(ref)).first()
    except ValueError:
        return Organization.objects.filter(slug=ref).first()


def admin_organizations(*, user: User) -> QuerySet[Organization]:
    """The production organizations `user` administers: the only ones whose portals it may manage."""
    return Organization.objects.filter(
        environment=Organization.Environment.PRODUCTION,
        memberships__user=user,
        memberships__role=OrgMembership.Role.ADMIN,
    )


def organization_get_for_admin(*, user: User, organization_id: uuid.UUID | None) -> Organization:
    """The production organization `user` administers and means: `organization_id`, or its only one.

    Raises AccountsError (422 on `organization_id`) for an organization outside its reach, or when it
    administers several and did not say which.
    """
    organizations = admin_organizations(user=user)
    if organization_id is not None:
        organization = organizations.filter(id=organization_id).first()
        if organization is None:
            raise AccountsError("Unknown organization.", loc=("organization_id",))
        return organization
    only = list(organizations[:2])
    if len(only) != 1:
        raise AccountsError(
            "You administer several organizations: say which one.", loc=("organization_id",), code="missing"
        )
    return only[0]
