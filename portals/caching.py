"""The rendered portal configuration, cached in the shared "routing" cache.

GET /config is the hottest read; every write that changes what it shows (settings,
features, the portal's name or domains, its deletion) forgets it after commit. Without
Redis that cache is per process, so entries also expire after ROUTING_CACHE_TTL (5 s):
another instance shows a change within that.
"""

import uuid
from collections.abc import Callable
from typing import Any, cast

from django.conf import settings
from django.core.cache import caches
from django.db import transaction

from portalsite.db import tenant_connection


def _key(portal_id: uuid.UUID) -> str:
    return f"config:{portal_id}"


def portal_config_cached(portal_id: uuid.UUID, build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    return cast(dict[str, Any], caches["routing"].get_or_set(_key(portal_id), build, settings.ROUTING_CACHE_TTL))


def portal_config_forget_on_commit(portal_id: uuid.UUID | None = None) -> None:
    """Forget a portal's cached config after commit (default: the portal of the current schema)."""
    portal_id = portal_id or getattr(tenant_connection.tenant, "id", None)
    if portal_id is not None:
        key = _key(portal_id)
        transaction.on_commit(lambda: caches["routing"].delete(key))
