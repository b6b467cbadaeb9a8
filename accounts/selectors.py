import uuid

from accounts.models import Organization, OrgMembership, User


def organization_get_by_ref(*, ref: str) -> Organization | None:
    """An organization by id or slug (operators type either)."""
    try:
        return Organization.objects.filter(id=uuid.UUID(ref)).first()
    except ValueError:
        return Organization.objects.filter(slug=ref).first()


def organization_first_admin(*, organization: Organization) -> User | None:
    """The organization's longest-standing admin: the account operator commands act as."""
    membership = (
        OrgMembership.objects.filter(organization=organization, role=OrgMembership.Role.ADMIN)
        .select_related("user")
        .order_by("created_at", "pk")
        .first()
    )
    return membership.user if membership is not None else None
