"""Reads inside one portal's schema that only the admin needs. Callers select the schema (`tenant_context`)."""

import uuid
from collections.abc import Iterable

from customer_portal.models import PortalUser


def portal_users_get_many(*, ids: Iterable[str]) -> list[PortalUser]:
    """The portal users with these ids, in invitation order; malformed and unknown ids are left out."""
    valid: list[uuid.UUID] = []
    for value in ids:
        try:
            valid.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    return list(PortalUser.objects.filter(id__in=valid)) if valid else []
