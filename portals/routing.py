"""Host name (or X-Portal-ID) -> portal, cached so that routing a request costs no query once warm.

Positive answers live in the "routing" cache: Redis with REDIS_URL (every service that
changes a domain forgets the affected hosts after commit, so a change takes effect at once
everywhere), else this process's memory for ROUTING_CACHE_TTL seconds (5 by default: the
bound on how long another instance can act on a route that changed). Negative answers
("no portal here") stay in this process only, for ROUTING_NEGATIVE_TTL seconds, so random
hosts cannot fill the shared cache.

A portal named by id (X-Portal-ID on a main host) is cached the same way, under its own key; unknown
ids are not remembered (any UUID is one, so they could not be bounded usefully).

A cached route names the portal id and schema it was made for. Schema names carry the
portal's id and are never reused, so a stale route can only point at a schema that no
longer exists: `stale_route_response` turns that into a 404 (never a 5xx, never another
portal's data) and forgets the route.
"""

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable

import psycopg
from django.conf import settings
from django.core.cache import caches
from django.db import ProgrammingError, connection, transaction
from django.http import JsonResponse

from portals.models import Portal
from portals.selectors import domain_routable, portal_routable
from portalsite.db import tenant_connection

logger = logging.getLogger(__name__)

_CACHED_FIELDS = ("id", "schema_name", "name", "slug", "organization_id")
_NEGATIVE_MAX_ENTRIES = 10_000

_negative: dict[str, float] = {}  # hostname -> monotonic time until which "no portal" stands
_negative_lock = threading.Lock()


def _key(hostname: str) -> str:
    return f"host:{hostname}"


def _id_key(portal_id: uuid.UUID | str) -> str:
    return f"portal:{portal_id}"


def _negative_get(hostname: str) -> bool:
    until = _negative.get(hostname)
    if until is None:
        return False
    if until > time.monotonic():
        return True
    with _negative_lock:
        _negative.pop(hostname, None)
    return False


def _negative_set(hostname: str) -> None:
    with _negative_lock:
        if len(_negative) >= _NEGATIVE_MAX_ENTRIES:
            _negative.clear()  # a flood of unknown hosts costs queries, never memory
        _negative[hostname] = time.monotonic() + settings.ROUTING_NEGATIVE_TTL


def portal_for_host(hostname: str) -> Portal | None:
    """The portal that registered exactly `hostname` (a default domain, or a verified custom one)."""
    if _negative_get(hostname):
        return None
    portal = _cached_route(_key(hostname), load=lambda: _domain_portal(hostname))
    if portal is None:
        _negative_set(hostname)
    return portal


def portal_for_id(portal_id: uuid.UUID) -> Portal | None:
    """The real portal with this id (never a spare or the public tenant)."""
    return _cached_route(_id_key(portal_id), load=lambda: portal_routable(portal_id=portal_id))


def _domain_portal(hostname: str) -> Portal | None:
    domain = domain_routable(hostname=hostname)
    return None if domain is None else domain.tenant


def _cached_route(key: str, *, load: Callable[[], Portal | None]) -> Portal | None:
    cache = caches["routing"]
    cached = cache.get(key)
    if cached is not None:
        return Portal(**cached)
    portal = load()
    if portal is not None:
        cache.set(key, {field: getattr(portal, field) for field in _CACHED_FIELDS}, settings.ROUTING_CACHE_TTL)
    return portal


def routing_forget(hostnames: Iterable[str], *, portal_id: uuid.UUID | None = None) -> None:
    """Forget the routes to these hosts (and this process's "no such host" answers), and the portal's
    route by id when given."""
    hostnames = list(hostnames)
    with _negative_lock:
        for hostname in hostnames:
            _negative.pop(hostname, None)
    keys = [_key(hostname) for hostname in hostnames]
    caches["routing"].delete_many(keys if portal_id is None else [*keys, _id_key(portal_id)])


def routing_forget_everything() -> None:
    """Drop every cached route and negative answer (tests start clean; an operator's last resort)."""
    with _negative_lock:
        _negative.clear()
    caches["routing"].clear()


def routing_forget_on_commit(hostnames: Iterable[str], *, portal_id: uuid.UUID | None = None) -> None:
    """`routing_forget` once the current transaction commits."""
    hostnames = list(hostnames)
    transaction.on_commit(lambda: routing_forget(hostnames, portal_id=portal_id))


def _schema_exists(schema_name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema_name])
        return cursor.fetchone() is not None


def _transaction_failed() -> bool:
    raw = tenant_connection.connection
    return raw is not None and raw.info.transaction_status == psycopg.pq.TransactionStatus.INERROR


def stale_route_response(exc: BaseException, hostname: str | None) -> JsonResponse | None:
    """A 404 when `exc` came from a route (by `hostname`, or by id when None) to a portal whose schema is gone
    (deleted since it was cached).

    Anything else (a missing table in a schema that exists is a bug) is left to the 500 handler. Requests
    run in autocommit, so the failed statement left the connection usable for the catalog check; inside
    an enclosing transaction (the test suite's) it cannot be asked, and the error alone decides.
    """
    if not isinstance(exc, ProgrammingError):
        return None
    if not isinstance(exc.__cause__, psycopg.errors.UndefinedTable | psycopg.errors.InvalidSchemaName):
        return None
    routed = tenant_connection.tenant
    tenant_connection.set_schema_to_public()
    if not isinstance(routed, Portal) or routed.schema_name == tenant_connection.schema_name:
        return None
    schema_name, portal_id = routed.schema_name, routed.pk
    if not _transaction_failed() and _schema_exists(schema_name):
        return None
    route = hostname or f"portal id {portal_id}"
    logger.warning("stale route: %s pointed at schema %s, which no longer exists", route, schema_name)
    routing_forget([hostname] if hostname else [], portal_id=portal_id)
    return JsonResponse({"detail": "Not found."}, status=404)
