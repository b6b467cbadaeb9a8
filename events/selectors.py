"""Reading the trail: filtered lists (newest first, by cursor) and the export (oldest first, streamed)."""

import base64
import binascii
import uuid
from collections.abc import Collection
from datetime import datetime

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Lower
from django.utils.dateparse import parse_datetime

from events.models import AuditEvent

# Events of one bulk write share their time: `seq` keeps them in the order they were recorded (`id` breaks
# the remaining ties, between organizations).
NEWEST_FIRST = ("-occurred_at", "-seq", "-id")
OLDEST_FIRST = ("occurred_at", "seq", "id")


def audit_event_list(
    *,
    organization_ids: Collection[uuid.UUID],
    portal_id: uuid.UUID | None = None,
    action: str | None = None,
    actor_email: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    """The events of `organization_ids` (the caller's: nothing else is ever visible) that match the filters;
    `since` is inclusive, `until` exclusive. Unordered: the caller orders it."""
    events = AuditEvent.objects.filter(organization_id__in=list(organization_ids))
    if portal_id is not None:
        events = events.filter(portal_id=portal_id)
    if action:
        events = events.filter(action=action)
    if actor_email:
        events = events.alias(actor_email_lower=Lower("actor_email")).filter(actor_email_lower=actor_email.lower())
    if since is not None:
        events = events.filter(occurred_at__gte=since)
    if until is not None:
        events = events.filter(occurred_at__lt=until)
    return events


def audit_event_counts(events: QuerySet[AuditEvent], field: str) -> list[tuple[str, int]]:
    """How many of `events` have each value of `field` (say `action`), the most frequent first: one query."""
    counts = events.order_by().values_list(field).annotate(n=Count("id")).order_by("-n", field)
    return [(value, n) for value, n in counts]


# Cursors: the position (occurred_at, seq, id) of the last event of a page. Later pages are "older than that",
# so events recorded meanwhile (newer) never shift them.


Position = tuple[datetime, int, uuid.UUID]


def cursor_encode(event: AuditEvent) -> str:
    text = f"{event.occurred_at.isoformat()}|{event.seq}|{event.id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def cursor_decode(cursor: str) -> Position | None:
    """The position a cursor names; None when it is not one of ours."""
    try:
        when, seq, event_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split("|")
        occurred_at = parse_datetime(when)
        position = int(seq)
        return (occurred_at, position, uuid.UUID(event_id)) if occurred_at is not None and position >= 0 else None
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def audit_event_page(
    events: QuerySet[AuditEvent], *, limit: int, after: Position | None
) -> tuple[list[AuditEvent], AuditEvent | None]:
    """One page, newest first, after the cursor position `after`: its events and, when there are more, the
    event the next cursor is made from. One query (it reads one row past the page to know)."""
    if after is not None:
        occurred_at, seq, event_id = after
        events = events.filter(
            Q(occurred_at__lt=occurred_at)
            | Q(occurred_at=occurred_at, seq__lt=seq)
            | Q(occurred_at=occurred_at, seq=seq, id__lt=event_id)
        )
    rows = list(events.order_by(*NEWEST_FIRST)[: limit + 1])
    return rows[:limit], (rows[limit - 1] if len(rows) > limit else None)
