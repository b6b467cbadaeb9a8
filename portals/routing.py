"""Host name -> portal, cached so that routing a request costs no query once warm.

The "routing" cache is shared by every worker (Redis with REDIS_URL, else files under
DATA_DIR); every service that changes a domain forgets the affected hosts after commit,
so a change takes effect at once everywhere.
"""

from collections.abc import Iterable

from django.core.cache import caches
from django.db import transaction

from portals.models import Domain, Portal

ROUTING_TTL_SECONDS = 3600  # bounds staleness from edits made outside the services
_NO_PORTAL = "-"
_CACHED_FIELDS = ("id", "schema_name", "name", "slug", "organization_id")


def _key(hostname: str) -> str:
    return f"host:{hostname}"


def portal_for_host(hostname: str) -> Portal | None:
    cache = caches["routing"]
    cached = cache.get(_key(hostname))
    if cached == _NO_PORTAL:
        return None
    if cached is not None:
        return Portal(**cached)
    domain = Domain.objects.select_related("tenant").filter(domain=hostname, tenant__is_spare=False).first()
    if domain is None:
        cache.set(_key(hostname), _NO_PORTAL, ROUTING_TTL_SECONDS)
        return None
    portal: Portal = domain.tenant
    cache.set(_key(hostname), {field: getattr(portal, field) for field in _CACHED_FIELDS}, ROUTING_TTL_SECONDS)
    return portal


def routing_forget_on_commit(hostnames: Iterable[str]) -> None:
    """Forget cached routes for these hosts once the current transaction commits."""
    keys = [_key(hostname) for hostname in hostnames]
    transaction.on_commit(lambda: caches["routing"].delete_many(keys))
