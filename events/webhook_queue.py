"""Which endpoints get an event, and queueing its deliveries in the transaction that records it.

`webhook_deliveries_queue` runs inside `events.services.record_many`: one statement finds the
organization's enabled endpoints that want each event and inserts a `pending` delivery for every
(event, endpoint) pair, whatever the number of events; a second queues one job per delivery (only when
there is one). A change that rolls back takes its events, deliveries and jobs with it.

An endpoint wants an event when one of its patterns is `*`, the event's action, or a prefix of it
followed by `.*` (`portal_user.*`, `portal.custom_domain.*`); and when it is not limited to a portal,
or the event is that portal's (an organization-wide event, with no portal, goes only to endpoints of
every portal).
"""

import functools
import uuid
from collections.abc import Sequence
from datetime import datetime

from django.db import connection
from django.utils import timezone
from django_tenants.utils import get_public_schema_name
from procrastinate.types import JSONDict

from events.models import AuditEvent
from events.webhook_models import WebhookDelivery, WebhookEndpoint
from portalsite.db import tenant_connection
from portalsite.jobs import app

WEBHOOK_QUEUE = "webhooks"
DELIVER_TASK = "deliver_webhook"  # events/tasks.py: tried again along WEBHOOK_RETRY_SCHEDULE
DELIVER_ONCE_TASK = "deliver_webhook_once"  # a manual retry: one try


def _table(model: type[WebhookDelivery] | type[WebhookEndpoint]) -> str:
    quote = connection.ops.quote_name
    return f"{quote(get_public_schema_name())}.{quote(model._meta.db_table)}"


@functools.cache
def _fan_out_sql() -> str:
    """Insert a pending delivery per (event, endpoint that wants it); returns the deliveries' ids.
    The pattern rule of the module docstring, in SQL: the one place it is written."""
    return (
        f"INSERT INTO {_table(WebhookDelivery)} "  # noqa: S608 (identifiers from the models; values are parameters)
        '("id", "endpoint_id", "event_id", "event_type", "status", "attempts", "created_at") '
        'SELECT gen_random_uuid(), e."id", ev.event_id, ev.action, %s, 0, %s '
        "FROM unnest(%b::uuid[], %b::uuid[], %b::text[]) WITH ORDINALITY AS ev(event_id, portal_id, action, n) "
        f'JOIN {_table(WebhookEndpoint)} e ON e."organization_id" = %s AND e."enabled" '
        'AND (e."portal_id" IS NULL OR e."portal_id" = ev.portal_id) '
        "AND EXISTS (SELECT 1 FROM unnest(e.\"events\") AS p(pattern) WHERE p.pattern = '*' "
        "OR p.pattern = ev.action "
        "OR (right(p.pattern, 2) = '.*' AND starts_with(ev.action, left(p.pattern, -1)))) "
        'ORDER BY ev.n, e."created_at" '
        'RETURNING "id"'
    )


def webhook_deliveries_queue(*, events: Sequence[AuditEvent]) -> None:
    """Queue the deliveries of `events` (of one organization), in the caller's transaction: one statement
    when no endpoint wants them, two when some do, whatever their number."""
    if not events:
        return
    # It runs with every event recorded: prepared, the arrays bound in binary (%b), about 1 ms for 1,000 events.
    with tenant_connection.prepared_cursor() as cursor:
        cursor.execute(
            _fan_out_sql(),
            [
                WebhookDelivery.Status.PENDING,
                timezone.now(),
                [event.id for event in events],
                [event.portal_id for event in events],
                [event.action for event in events],
                events[0].organization_id,
            ],
        )
        delivery_ids = [row[0] for row in cursor.fetchall()]
    webhook_jobs_queue(delivery_ids=delivery_ids)


def webhook_jobs_queue(*, delivery_ids: Sequence[uuid.UUID], once: bool = False) -> None:
    """One job per delivery, in one statement; `once`: a single try (a manual retry) instead of the schedule."""
    if not delivery_ids:
        return
    jobs: list[JSONDict] = [{"delivery_id": str(delivery_id)} for delivery_id in delivery_ids]
    app.configure_task(DELIVER_ONCE_TASK if once else DELIVER_TASK).batch_defer(*jobs)


def webhook_delivery_new(
    *, endpoint: WebhookEndpoint, event_id: uuid.UUID, event_type: str, data: JSONDict, now: datetime
) -> WebhookDelivery:
    """A delivery of an event that is not in the audit log (`webhook.test`), queued in the caller's transaction."""
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event_id=event_id, event_type=event_type, data=data, created_at=now
    )
    webhook_jobs_queue(delivery_ids=[delivery.id])
    return delivery
