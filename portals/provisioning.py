"""Portal schemas: a warm pool of pre-migrated spares, claimed by renaming.

Running every migration for a new schema costs hundreds of milliseconds and grows with
each migration; `ALTER SCHEMA ... RENAME` costs about one. So a few spare schemas are
kept migrated and ready. Each spare has a `Portal` row (`is_spare=True`): that row is
what makes `migrate_schemas` migrate it, so spares never drift from real portals.
"""

import logging
import uuid
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.postgresql_backend.base import is_valid_schema_name

from portals.models import Portal

logger = logging.getLogger(__name__)

SCHEMA_PREFIX = "portal_"
SPARE_PREFIX = "spare_"
# Session-level advisory lock key: one refiller at a time across every process.
_REFILL_LOCK_KEY = 0x706F7274616C73  # "portals"


def schema_name_for_portal(portal_id: uuid.UUID) -> str:
    """`portal_<id as 32 hex digits>`. Never the slug: a slug is free again once its portal is deleted, and a
    reused schema name would let a stale cached route (another instance, another organization) read the new
    owner's data. Portal ids are random and never reused, so neither are schema names."""
    name = f"{SCHEMA_PREFIX}{portal_id.hex}"
    assert is_valid_schema_name(name), name
    return name


def spare_schema_name(spare_id: uuid.UUID) -> str:
    """`spare_<id hex>`: a spare is named from its row's id too, and keeps that id when it becomes a portal."""
    return f"{SPARE_PREFIX}{spare_id.hex}"


def spare_schema_create() -> Portal:
    """Create one spare: a tenant row and a fully migrated schema, in one transaction."""
    spare_id = uuid.uuid4()
    with transaction.atomic():
        spare = Portal.objects.create(
            id=spare_id,
            schema_name=spare_schema_name(spare_id),
            slug=f"spare-{spare_id.hex}",
            name="(spare)",
            is_spare=True,
        )
        spare.create_schema(verbosity=0)  # inside our atomic block: a failure leaves no schema behind
    return spare


def spare_pool_refill(*, size: int | None = None) -> int:
    """Top the pool up to `size` (default PORTAL_SPARE_POOL_SIZE); returns how many spares were made.

    Returns 0 at once when another process is already refilling (the refill job, `refill_spare_schemas`
    and `quickstart` all come here).
    """
    target = settings.PORTAL_SPARE_POOL_SIZE if size is None else size
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_REFILL_LOCK_KEY])
        (locked,) = cursor.fetchone()
    if not locked:
        return 0
    try:
        created = 0
        while Portal.objects.filter(is_spare=True).count() < target:
            spare_schema_create()
            created += 1
        return created
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_REFILL_LOCK_KEY])


def portal_row_with_schema(**fields: Any) -> Portal:
    """Create a portal row whose schema is fully migrated, inside the caller's transaction.

    Claims a spare (locked with SKIP LOCKED, so concurrent creates take different ones)
    and renames its schema to `schema_name_for_portal(spare.id)`; with the pool empty,
    migrates a new schema (slow, logged).
    """
    spare = Portal.objects.select_for_update(skip_locked=True).filter(is_spare=True).order_by("created_at").first()
    if spare is None:
        portal_id = uuid.uuid4()
        schema_name = schema_name_for_portal(portal_id)
        logger.warning("spare schema pool is empty: migrating %s from scratch (slow path)", schema_name)
        portal = Portal.objects.create(id=portal_id, schema_name=schema_name, **fields)
        portal.create_schema(verbosity=0)
        return portal
    schema_name = schema_name_for_portal(spare.id)
    with connection.cursor() as cursor:
        quote = connection.ops.quote_name
        cursor.execute(f"ALTER SCHEMA {quote(spare.schema_name)} RENAME TO {quote(schema_name)}")
    now = timezone.now()
    fields.update(schema_name=schema_name, is_spare=False, created_at=now, updated_at=now)
    Portal.objects.filter(pk=spare.pk).update(**fields)
    for attribute, value in fields.items():
        setattr(spare, attribute, value)
    return spare


def schema_drop(*, schema_name: str) -> None:
    """Drop a portal's schema and everything in it, inside the caller's transaction."""
    assert is_valid_schema_name(schema_name) and schema_name != "public", schema_name
    with connection.cursor() as cursor:
        # Deferred foreign-key checks still pending in this transaction would block the DROP: run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"DROP SCHEMA IF EXISTS {connection.ops.quote_name(schema_name)} CASCADE")
