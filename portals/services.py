import enum
import logging
import re
from typing import Literal

import psycopg
from django.conf import settings
from django.db import IntegrityError, ProgrammingError, transaction
from django.utils.text import slugify
from django_tenants.utils import get_public_schema_name, schema_context, tenant_context

from accounts.models import Organization, User
from events.services import Target, field_changes, record
from portals.caching import portal_config_forget_on_commit
from portals.domain_verification import custom_domain_pending_fields, www_twin
from portals.errors import PortalsError
from portals.models import Domain, Portal, portal_host
from portals.provisioning import portal_row_with_schema, schema_drop
from portals.routing import routing_forget_on_commit
from portals.signals import portal_schema_ready
from portals.tasks import spare_pool_refill_later
from portalsite.hostnames import is_hostname
from portalsite.slugs import unique_slug

logger = logging.getLogger(__name__)

SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$")
RESERVED_SLUGS = frozenset(
    {"www", "api", "admin", "public", "static", "media", "app", "apps", "auth", "login", "mail", "smtp", "imap",
     "pop", "ftp", "ns1", "ns2", "dns", "docs", "status", "support", "help", "root", "system",
     "localhost", "dashboard", "billing", "assets", "cdn", "blog", "dev", "staging", "internal"}
)  # fmt: skip


class Unset(enum.Enum):
    """ "Field not given", as opposed to None ("remove it")."""

    UNSET = enum.auto()


UNSET = Unset.UNSET


def _clean_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise PortalsError("Name must not be blank.", loc=("name",), code="string_too_short")
    return name


def _slug_base(name: str) -> str:
    """A DNS-label-shaped start for a slug derived from `name` (at least 3 characters)."""
    base = re.sub(r"[-_]+", "-", slugify(name)).strip("-")
    return base if len(base) >= 3 else f"{base}-portal".lstrip("-")


def _validated_slug(slug: str) -> str:
    if not SLUG_PATTERN.match(slug):
        raise PortalsError(
            "Use 3-63 lower-case letters, digits and inner hyphens.", loc=("slug",), code="string_pattern_mismatch"
        )
    if slug in RESERVED_SLUGS:
        raise PortalsError(f"The slug {slug!r} is reserved.", loc=("slug",))
    if Portal.objects.filter(slug=slug).exists():
        raise PortalsError(f"The slug {slug!r} is already taken.", loc=("slug",), code="unique")
    return slug


def _validated_custom_domain(domain: str, *, portal: Portal | None = None) -> str:
    domain = domain.strip().lower().rstrip(".")
    if not is_hostname(domain):
        raise PortalsError(
            "Enter a host name such as portal.example.com (no scheme, port or path).", loc=("custom_domain",)
        )
    base = settings.PORTAL_BASE_DOMAIN
    if domain == base or domain.endswith(f".{base}"):
        raise PortalsError(f"Custom domains cannot be under {base}.", loc=("custom_domain",))
    if domain in settings.MAIN_HOSTS or www_twin(domain) in settings.MAIN_HOSTS:
        raise PortalsError("This host serves the main API.", loc=("custom_domain",))
    # `www.x` and `x` are one name (the database's portals_domain_www_twin_unique enforces it under races too).
    taken = Domain.objects.filter(domain__in=[domain, www_twin(domain)])
    if portal is not None:
        taken = taken.exclude(tenant=portal)
    if taken.exists():
        raise PortalsError("This domain is already used by another portal.", loc=("custom_domain",), code="unique")
    return domain


def _integrity_error_as_422(exc: IntegrityError | ProgrammingError) -> PortalsError:
    """Map a lost race on a unique name to the same 422 the pre-checks give."""
    if isinstance(exc.__cause__, psycopg.errors.DuplicateSchema):  # the winner's schema was already committed
        return PortalsError("This slug is already taken.", loc=("slug",), code="unique")
    if not isinstance(exc, IntegrityError):
        raise exc
    constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", "") or ""
    if "domain" in constraint:
        return PortalsError("This domain is already used by another portal.", loc=("custom_domain",), code="unique")
    # The schema rename can lose the race too: PostgreSQL's own pg_namespace_nspname_index refuses it.
    if "slug" in constraint or "schema_name" in constraint or "nspname" in constraint:
        return PortalsError("This slug is already taken.", loc=("slug",), code="unique")
    raise exc


def portal_create(
    *,
    organization: Organization,
    created_by: User | None,
    name: str,
    slug: str | None = None,
    custom_domain: str | None = None,
) -> Portal:
    """Create a portal of `organization` with its schema, default domain and custom domain, in one transaction.

    `created_by` is the account that asked (None for an operator). Takes a spare schema from the pool
    (milliseconds) and queues a refill job in the same transaction. `portal_schema_ready` lets the apps above
    fill the new schema inside the same transaction. A failure anywhere, a lost slug or domain race included, leaves
    nothing behind.
    """
    try:
        # The rows live in public, whatever schema the caller's connection was left on.
        with transaction.atomic(), schema_context(get_public_schema_name()):
            return _portal_create(
                organization=organization, created_by=created_by, name=name, slug=slug, custom_domain=custom_domain
            )
    except (IntegrityError, ProgrammingError) as exc:
        raise _integrity_error_as_422(exc) from exc


def _portal_create(
    *, organization: Organization, created_by: User | None, name: str, slug: str | None, custom_domain: str | None
) -> Portal:
    if organization.environment != Organization.Environment.PRODUCTION:
        raise PortalsError(
            f"Organization {organization.slug} is a sandbox; only production organizations have portals.",
            loc=("organization_id",),
        )
    name = _clean_name(name)
    if slug is None:
        slug = unique_slug(base=_slug_base(name), queryset=Portal.objects.all(), reserved=RESERVED_SLUGS)
    else:
        slug = _validated_slug(slug)
    custom = _validated_custom_domain(custom_domain) if custom_domain else None

    portal = portal_row_with_schema(name=name, slug=slug, organization=organization, created_by=created_by)
    domains = [Domain(domain=portal_host(slug), tenant=portal, is_primary=True)]
    if custom:
        domains.append(
            Domain(domain=custom, tenant=portal, is_primary=False, is_custom=True, **custom_domain_pending_fields())
        )
    Domain.objects.bulk_create(domains)
    with tenant_context(portal):
        portal_schema_ready.send(sender=Portal, portal=portal)

    routing_forget_on_commit(domain.domain for domain in domains)  # forget cached "no such host" answers
    spare_pool_refill_later()
    _portal_record(portal, "portal.created", field_changes({}, {"name": name, "slug": slug, "custom_domain": custom}))
    creator = created_by.email if created_by is not None else "an operator"
    logger.info("portal %s (%s) created by %s", portal.slug, portal.id, creator)
    return portal


def portal_update(
    *, portal: Portal, name: str | None = None, custom_domain: str | Literal[Unset.UNSET] | None = UNSET
) -> Portal:
    """Rename a portal and/or set (a host name) or remove (None) its custom domain."""
    try:
        with transaction.atomic():
            portal = Portal.objects.select_for_update().get(pk=portal.pk)
            before = {"name": portal.name, "custom_domain": _custom_domain_name(portal)}
            after: dict[str, str | None] = {}
            if name is not None:
                portal.name = after["name"] = _clean_name(name)
            if custom_domain is not UNSET:
                after["custom_domain"] = _portal_custom_domain_set(portal=portal, custom_domain=custom_domain)
            portal.save(update_fields=["name", "updated_at"])
            changes = field_changes(before, after)
            if changes:  # no change, no event
                _portal_record(portal, "portal.updated", changes)
            # Routes and the rendered config show the name and domains too: forget them.
            routing_forget_on_commit(portal.domains.values_list("domain", flat=True), portal_id=portal.id)
            portal_config_forget_on_commit(portal.id)
            return portal
    except IntegrityError as exc:
        raise _integrity_error_as_422(exc) from exc


def _custom_domain_name(portal: Portal) -> str | None:
    return portal.domains.filter(is_custom=True).values_list("domain", flat=True).first()


def _portal_custom_domain_set(*, portal: Portal, custom_domain: str | None) -> str | None:
    """A new custom domain starts pending with a fresh token (the same one again changes nothing).
    Returns the custom domain now set (None: none)."""
    new = _validated_custom_domain(custom_domain, portal=portal) if custom_domain else None
    old = list(portal.domains.filter(is_custom=True).values_list("domain", flat=True))
    if old == ([new] if new else []):
        return new
    portal.domains.filter(is_custom=True).delete()
    if new:
        Domain.objects.create(
            domain=new, tenant=portal, is_primary=False, is_custom=True, **custom_domain_pending_fields()
        )
    routing_forget_on_commit(old)
    return new


def _portal_record(portal: Portal, action: str, changes: dict[str, object] | None = None) -> None:
    assert portal.organization_id is not None  # the public tenant and spares change through no service
    record(
        action=action,
        organization_id=portal.organization_id,
        portal_id=portal.id,
        target=Target(type="portal", id=str(portal.id), label=portal.slug),
        changes=changes,
    )


@transaction.atomic
def portal_delete(*, portal: Portal) -> None:
    """Drop the portal's schema with all its data, then its domains and row, in one transaction."""
    portal = Portal.objects.select_for_update().get(pk=portal.pk)
    assert portal.schema_name != get_public_schema_name() and not portal.is_spare
    hosts = list(portal.domains.values_list("domain", flat=True))
    schema_drop(schema_name=portal.schema_name)
    Domain.objects.filter(tenant=portal).delete()
    Portal.objects.filter(pk=portal.pk).delete()
    _portal_record(portal, "portal.deleted")  # the trail outlives the portal: events name it by id only
    routing_forget_on_commit(hosts, portal_id=portal.id)
    portal_config_forget_on_commit(portal.id)
    logger.info("portal %s (%s) deleted; schema %s dropped", portal.slug, portal.id, portal.schema_name)


@transaction.atomic
def public_tenant_ensure() -> Portal:
    """Create the public tenant and a domain for each of MAIN_HOSTS; a no-op when they exist."""
    public, _ = Portal.objects.get_or_create(
        schema_name=get_public_schema_name(),
        defaults={"name": "Public", "slug": get_public_schema_name()},
    )
    existing = set(Domain.objects.filter(domain__in=settings.MAIN_HOSTS).values_list("domain", flat=True))
    Domain.objects.bulk_create(
        Domain(domain=host, tenant=public, is_primary=index == 0)
        for index, host in enumerate(settings.MAIN_HOSTS)
        if host not in existing
    )
    return public
