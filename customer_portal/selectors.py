"""Reads inside one portal's schema. Callers select the schema (host routing or `tenant_context`)."""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import connection
from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from customer_portal.models import Feature, Invitation, PortalSession, PortalSettings, PortalUser
from portals.models import Portal
from portalsite.db import schema_batches
from portalsite.errors import NotFoundError, uuid_or_not_found, valid_uuids


def portal_settings_get() -> PortalSettings:
    """The current schema's settings row (created by migration 0002 in every portal schema)."""
    return PortalSettings.objects.get(id=1)


def feature_list() -> list[Feature]:
    return list(Feature.objects.all())


def live_sessions() -> QuerySet[PortalSession]:
    return PortalSession.objects.filter(ended_at__isnull=True, expires_at__gt=timezone.now())


def portal_user_filter(
    *, status: str | None = None, role: str | None = None, search: str | None = None
) -> QuerySet[PortalUser]:
    """The current portal's users in invitation order, by status, role and a search in e-mail and name."""
    users = PortalUser.objects.all()
    if status:
        users = users.filter(status=status)
    if role:
        users = users.filter(role=role)
    if search:
        users = users.filter(Q(email__icontains=search) | Q(name__icontains=search))
    return users


def portal_user_list(
    *,
    limit: int | None = None,
    offset: int = 0,
    status: str | None = None,
    role: str | None = None,
    search: str | None = None,
    values: Sequence[str] | None = None,
) -> tuple[list[PortalUser] | list[dict[str, Any]], int]:
    """The current portal's users in invitation order, filtered, one page of them when `limit` is given,
    and the total that matches. With `values`, rows come as dicts of those columns: half the cost of
    model instances for a whole list of thousands."""
    users = portal_user_filter(status=status, role=role, search=search)
    rows = users.values(*values) if values else users
    if limit is None and offset == 0:
        everyone = list(rows)
        return everyone, len(everyone)
    page = rows[offset : offset + limit] if limit is not None else rows[offset:]
    return list(page), users.count()


def portal_user_get(*, portal_user_id: uuid.UUID | str) -> PortalUser:
    """One portal user with its live sessions prefetched (`live_sessions` attribute)."""
    user = (
        PortalUser.objects.filter(id=uuid_or_not_found(portal_user_id))
        .prefetch_related(Prefetch("sessions", queryset=live_sessions(), to_attr="live_sessions"))
        .first()
    )
    if user is None:
        raise NotFoundError()
    return user


def portal_user_list_by_ids(*, ids: Iterable[uuid.UUID | str]) -> list[PortalUser]:
    """The portal users with these ids, in invitation order; malformed and unknown ids are left out."""
    valid = valid_uuids(ids)
    return list(PortalUser.objects.filter(id__in=valid)) if valid else []


def invitation_list(*, status: str = "pending", delivery_status: str | None = None) -> QuerySet[Invitation]:
    """Invitations by their effective status (a pending one past its expiry is expired); `all` for every one.
    `delivery_status` (queued, sent, failed) keeps those whose e-mail stands there."""
    now = timezone.now()
    invitations = Invitation.objects.select_related("portal_user")
    if delivery_status is not None:
        invitations = invitations.filter(delivery_status=delivery_status)
    if status == "pending":
        return invitations.filter(status=Invitation.Status.PENDING, expires_at__gt=now)
    if status == "expired":
        return invitations.filter(
            Q(status=Invitation.Status.EXPIRED) | Q(status=Invitation.Status.PENDING, expires_at__lte=now)
        )
    if status == "all":
        return invitations
    return invitations.filter(status=status)


def session_list_active() -> list[PortalSession]:
    return list(live_sessions().select_related("portal_user").order_by("-created_at"))


@dataclass(frozen=True)
class PortalStats:
    users: dict[str, int]
    invitations: dict[str, int]
    invitation_emails: dict[str, int]
    sessions: dict[str, int]
    logins: dict[str, int]
    features: dict[str, int]


def portal_stats() -> PortalStats:
    """Counts for the current portal, in four aggregate queries whatever its size."""
    now = timezone.now()
    users = PortalUser.objects.aggregate(
        total=Count("id"),
        active=Count("id", filter=Q(status=PortalUser.Status.ACTIVE)),
        invited=Count("id", filter=Q(status=PortalUser.Status.INVITED)),
        revoked=Count("id", filter=Q(status=PortalUser.Status.REVOKED)),
    )
    pending = Q(status=Invitation.Status.PENDING)
    invitations = Invitation.objects.aggregate(
        pending=Count("id", filter=pending & Q(expires_at__gt=now)),
        accepted=Count("id", filter=Q(status=Invitation.Status.ACCEPTED)),
        expired=Count("id", filter=Q(status=Invitation.Status.EXPIRED) | (pending & Q(expires_at__lte=now))),
        revoked=Count("id", filter=Q(status=Invitation.Status.REVOKED)),
        **{f"email_{status}": Count("id", filter=Q(delivery_status=status)) for status in Invitation.DeliveryStatus},
    )
    invitation_emails = {status.value: invitations.pop(f"email_{status}") for status in Invitation.DeliveryStatus}
    # Every login opens a session, and ended sessions are kept: logins are sessions created in a window.
    sessions = PortalSession.objects.aggregate(
        active=Count("id", filter=Q(ended_at__isnull=True, expires_at__gt=now)),
        last_24h=Count("id", filter=Q(created_at__gt=now - timedelta(days=1))),
        last_7d=Count("id", filter=Q(created_at__gt=now - timedelta(days=7))),
        last_30d=Count("id", filter=Q(created_at__gt=now - timedelta(days=30))),
    )
    features = Feature.objects.aggregate(enabled=Count("key", filter=Q(enabled=True)), total=Count("key"))
    return PortalStats(
        users=users,
        invitations=invitations,
        invitation_emails=invitation_emails,
        sessions={"active": sessions.pop("active")},
        logins=sessions,
        features=features,
    )


def portal_user_counts(*, portals: Iterable[Portal]) -> dict[uuid.UUID, int]:
    """Non-revoked users per portal, read from the portals' schemas in one query per SCHEMAS_PER_STATEMENT portals
    (from any schema: each table is named with its schema)."""
    portals = list(portals)
    table = connection.ops.quote_name(PortalUser._meta.db_table)
    counts: dict[uuid.UUID, int] = {}
    for batch in schema_batches(portals):
        selects = [
            f"SELECT %s::uuid, count(*) FROM {connection.ops.quote_name(portal.schema_name)}.{table} "  # noqa: S608
            "WHERE status <> %s"
            for portal in batch
        ]
        params: list[uuid.UUID | str] = []
        for portal in batch:
            params += [portal.id, PortalUser.Status.REVOKED]
        with connection.cursor() as cursor:
            cursor.execute(" UNION ALL ".join(selects), params)
            counts.update(cursor.fetchall())
    return counts


def portal_user_session_list(*, portal_user_id: uuid.UUID) -> list[PortalSession]:
    """The member's live sessions in this portal, most recently seen first (with `portal_user`)."""
    return list(
        live_sessions().filter(portal_user_id=portal_user_id).select_related("portal_user").order_by("-last_seen_at")
    )
