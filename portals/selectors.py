import uuid
from collections.abc import Iterable

from django.db.models import QuerySet

from accounts.models import Organization, User
from accounts.selectors import admin_organizations
from portals.models import Domain, Portal, PortalMigration
from portalsite.errors import NotFoundError, uuid_or_not_found


def domain_routable(*, hostname: str) -> Domain | None:
    """The domain row for exactly `hostname` when it leads to a portal: a real portal's default domain, or
    its custom domain once verified. Never a spare, never the public tenant's MAIN_HOSTS rows."""
    return (
        Domain.objects.select_related("tenant")
        .filter(domain=hostname, tenant__is_spare=False, tenant__organization__isnull=False)
        .filter(Domain.ROUTES)
        .first()
    )


def portal_routable(*, portal_id: uuid.UUID) -> Portal | None:
    """A real portal by id, as X-Portal-ID names one: never a spare, never the public tenant."""
    return Portal.objects.filter(id=portal_id, is_spare=False, organization__isnull=False).first()


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


def portal_list_for_admin_site(*, user: User) -> QuerySet[Portal]:
    """The portals `user` may manage in the Django admin: the same ones as on the API (its production
    organizations'), or every real portal for a superuser (an operator); never a spare or the public tenant."""
    if user.is_superuser:
        return Portal.objects.filter(is_spare=False, organization__isnull=False)
    return portal_list_for_admin(user=user)


def organization_list_for_portal_create(*, user: User) -> QuerySet[Organization]:
    """Where `user` may create a portal in the Django admin: any production organization for a superuser."""
    if user.is_superuser:
        return Organization.objects.filter(environment=Organization.Environment.PRODUCTION)
    return admin_organizations(user=user)


def portal_migration_outcomes(*, portals: Iterable[Portal]) -> dict[uuid.UUID, PortalMigration]:
    """Each portal's last `migrate_portals` outcome, in one query (a portal it never saw has none)."""
    return {row.portal_id: row for row in PortalMigration.objects.filter(portal_id__in=[p.pk for p in portals])}
