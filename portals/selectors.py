import uuid
from collections.abc import Iterable

from django.db import connection
from django.db.models import QuerySet

from accounts.models import Organization, OrgMembership, User
from customer_portal.models import PortalUser
from portals.models import Domain, Portal
from portalsite.errors import NotFoundError, uuid_or_not_found


def admin_organizations(*, user: User) -> QuerySet[Organization]:
    """The production organizations `user` administers: the only ones whose portals it may manage."""
    return Organization.objects.filter(
        environment=Organization.Environment.PRODUCTION,
        memberships__user=user,
        memberships__role=OrgMembership.Role.ADMIN,
    )


def domain_routable(*, hostname: str) -> Domain | None:
    """The domain row for exactly `hostname` when it leads to a portal: a real portal's default domain, or
    its custom domain once verified. Never a spare, never the public tenant's MAIN_HOSTS rows."""
    return (
        Domain.objects.select_related("tenant")
        .filter(domain=hostname, tenant__is_spare=False, tenant__organization__isnull=False)
        .filter(Domain.ROUTES)
        .first()
    )


def portal_list_for_admin(*, user: User) -> QuerySet[Portal]:
    """The portals `user` may manage, oldest first (domains are not fetched: callers that show them prefetch)."""
    return Portal.objects.filter(organization__in=admin_organizations(user=user), is_spare=False).order_by(
        "created_at", "id"
    )


def portal_get_for_admin(*, user: User, portal_id: uuid.UUID | str) -> Portal:
    """The portal if `user` administers its (production) organization; NotFoundError otherwise."""
    portal = portal_list_for_admin(user=user).filter(id=uuid_or_not_found(portal_id)).first()
    if portal is None:
        raise NotFoundError()
    return portal


def portal_list_all(*, organization_id: uuid.UUID | None = None) -> QuerySet[Portal]:
    """Every real portal (never a spare or the public tenant), or one organization's, oldest first,
    with the organization and domains fetched for whoever lists them."""
    portals = Portal.objects.filter(is_spare=False, organization__isnull=False)
    if organization_id is not None:
        portals = portals.filter(organization_id=organization_id)
    return portals.select_related("organization").prefetch_related("domains").order_by("created_at", "id")


def portal_get_by_ref(*, ref: str) -> Portal | None:
    """A portal by id or slug (operators type either); spares and the public tenant are not portals."""
    portals = Portal.objects.filter(is_spare=False, organization__isnull=False)
    try:
        return portals.filter(id=uuid.UUID(ref)).first()
    except ValueError:
        return portals.filter(slug=ref).first()


# Portals per counting statement: each portal's table takes a few locks until the statement ends
# (autocommit), and one statement over thousands of schemas would exhaust PostgreSQL's lock table.
USER_COUNT_BATCH = 200


def portal_user_counts(*, portals: Iterable[Portal]) -> dict[uuid.UUID, int]:
    """Non-revoked users per portal, read from the portals' schemas in one query per 200 portals."""
    portals = list(portals)
    table = connection.ops.quote_name(PortalUser._meta.db_table)
    counts: dict[uuid.UUID, int] = {}
    for start in range(0, len(portals), USER_COUNT_BATCH):
        batch = portals[start : start + USER_COUNT_BATCH]
        selects = [
            f"SELECT %s::uuid, count(*) FROM {connection.ops.quote_name(portal.schema_name)}.{table} "  # noqa: S608
            "WHERE status <> %s"
            for portal in batch
        ]
        params: list[object] = []
        for portal in batch:
            params += [portal.id, PortalUser.Status.REVOKED]
        with connection.cursor() as cursor:
            cursor.execute(" UNION ALL ".join(selects), params)
            counts.update(cursor.fetchall())
    return counts
