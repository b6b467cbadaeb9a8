"""Recording events: `record` (one change) and `record_many` (a bulk write, one event per entity), each called
inside the transaction of the change it records, so the event commits or rolls back with it."""

import functools
import ipaddress
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.utils import timezone
from django_tenants.utils import get_public_schema_name

from events.chain import event_hash
from events.context import Actor, audit_context_get
from events.models import AuditChain, AuditEvent
from events.webhook_queue import webhook_deliveries_queue
from portalsite.db import model_attnames, tenant_connection

# `changes` never carries a secret: a field whose name says it might be one is refused outright.
SECRET_WORDS = ("password", "secret", "token")


@dataclass(frozen=True)
class Target:
    """What an event is about: `type` (portal, portal_user, invitation, ...), its id and a human label."""

    type: str
    id: str
    label: str = ""


@dataclass(frozen=True)
class Pending:
    """One event of a bulk write, before it is recorded."""

    action: str
    target: Target
    changes: dict[str, Any] | None = None


def record(
    *,
    action: str,
    organization_id: uuid.UUID | str,
    portal_id: uuid.UUID | str | None = None,
    target: Target,
    changes: dict[str, Any] | None = None,
    actor: Actor | None = None,
) -> AuditEvent:
    """Record one event of `organization_id` (and `portal_id`) in the caller's transaction.

    `changes` is `{field: [before, after]}` of the fields that changed; `actor` overrides the context's (an
    anonymous request that becomes someone, such as an accepted invitation). Two queries.
    """
    return record_many(
        organization_id=organization_id,
        portal_id=portal_id,
        events=[Pending(action=action, target=target, changes=changes)],
        actor=actor,
    )[0]


def record_many(
    *,
    organization_id: uuid.UUID | str,
    portal_id: uuid.UUID | str | None = None,
    events: Sequence[Pending],
    actor: Actor | None = None,
) -> list[AuditEvent]:
    """Record `events` of one organization in the caller's transaction, in order: two queries, whatever their
    number.

    Lock contract: takes the organization's chain head row lock (held until the caller's transaction ends), so
    concurrent writers in one organization append one after the other. Call it after the caller's own locks.
    """
    if not events:
        return []
    if not connection.in_atomic_block:
        raise RuntimeError("events are recorded inside the transaction of the change they record")
    context = audit_context_get()
    who = actor or context.current_actor()
    shared = {  # computed once: every event of the call has the same time, organization, portal and context
        "occurred_at": timezone.now(),
        "organization_id": uuid.UUID(str(organization_id)),
        "portal_id": uuid.UUID(str(portal_id)) if portal_id else None,
        "actor_type": who.type,
        "actor_id": who.id,
        "actor_email": who.email,
        "via": context.via,
        "ip_address": _ip(context.ip_address),
        "user_agent": context.user_agent[:512],
        "request_id": context.request_id,
    }
    # Built by `Model.from_db` from values in column order (a quarter of the cost of keyword arguments, which
    # shows at a thousand a call); the chain fields are filled in by `_chain_append`, which inserts the rows
    # before anyone else sees them (their state says "saved" at once).
    names = model_attnames(AuditEvent)
    template = [shared.get(name) for name in names]
    own = [names.index(name) for name in ("id", "action", "target_type", "target_id", "target_label", "changes")]
    rows = []
    for event in events:
        values = template.copy()
        for index, value in zip(own, _own_values(event), strict=True):
            values[index] = value
        rows.append(AuditEvent.from_db(connection.alias, names, values))
    _chain_append(rows)
    webhook_deliveries_queue(events=rows)  # their deliveries, in this transaction (events.webhook_queue)
    return rows


def _own_values(event: Pending) -> tuple[Any, ...]:
    """An event's own columns: id, action, target_type, target_id, target_label, changes."""
    target = event.target
    return uuid.uuid4(), event.action, target.type, str(target.id), target.label[:255], _json_changes(event.changes)


def _ip(value: str | None) -> str | None:
    """The address as PostgreSQL's inet prints it back (so the hash of the row read back is the same)."""
    try:
        return str(ipaddress.ip_address(value)) if value else None
    except ValueError:
        return None


def _json_changes(changes: dict[str, Any] | None) -> dict[str, Any]:
    """`changes` as it reads back from jsonb (dates and ids as strings), refusing anything named like a secret."""
    for name in changes or {}:
        if any(word in name.lower() for word in SECRET_WORDS):
            raise ValueError(f"audit changes must not carry secrets ({name!r})")
    if not changes:
        return {}
    if all(type(pair) is list and all(_is_json_scalar(value) for value in pair) for pair in changes.values()):
        return dict(changes)  # already as it reads back (the common case): no round trip
    loaded: dict[str, Any] = json.loads(json.dumps(changes, cls=DjangoJSONEncoder))
    return loaded


def _is_json_scalar(value: object) -> bool:
    """A value JSON writes as itself (text choices are strings too)."""
    return value is None or isinstance(value, str | int | float)


def _table(model: type[AuditEvent] | type[AuditChain]) -> str:
    quote = connection.ops.quote_name
    return f"{quote(get_public_schema_name())}.{quote(model._meta.db_table)}"


@functools.cache
def _head_sql() -> str:
    """Take `n` numbers in the organization's chain: returns the last one taken and the hash before them.
    The upsert locks the head row; a writer that waited reads the head its predecessor committed."""
    chain = _table(AuditChain)
    return (
        f'INSERT INTO {chain} ("organization_id", "seq", "hash", "pruned_seq", "pruned_hash") '  # noqa: S608
        "VALUES (%s, %s, '', 0, '') "
        f'ON CONFLICT ("organization_id") DO UPDATE SET "seq" = {chain}."seq" + EXCLUDED."seq" '
        'RETURNING "seq", "hash"'
    )


# The columns every event of one call shares (its time, organization, portal and context): one value each.
SHARED_COLUMNS = frozenset(
    {"occurred_at", "organization_id", "portal_id", "actor_type", "actor_id", "actor_email", "via", "ip_address",
     "user_agent", "request_id"}
)  # fmt: skip


@functools.cache
def _insert_sql() -> str:
    """Store the new head hash and insert the events, in one statement (a data-modifying CTE). The shared
    columns are one parameter each; the others one array each (`unnest`): the statement is the same short
    text for one event or a thousand (a thousand rows of placeholders cost more to send and parse than to
    insert), so it is prepared once per connection."""
    fields = AuditEvent._meta.concrete_fields
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(field.column)) for field in fields)
    own = [field for field in fields if field.attname not in SHARED_COLUMNS]
    arrays = ", ".join(f"%b::{field.db_type(connection)}[]" for field in own)
    names = ", ".join(quote(str(field.column)) for field in own)
    values = ", ".join(
        f"%s::{field.db_type(connection)}" if field.attname in SHARED_COLUMNS else f"u.{quote(str(field.column))}"
        for field in fields
    )
    return (
        f'WITH head AS (UPDATE {_table(AuditChain)} SET "hash" = %s WHERE "organization_id" = %s) '  # noqa: S608
        f"INSERT INTO {_table(AuditEvent)} ({columns}) SELECT {values} FROM unnest({arrays}) AS u({names})"
    )


def _insert_params(rows: list[AuditEvent]) -> list[Any]:
    """The shared columns' values (the first row's), then each other column's values (JSON as its text)."""
    fields = AuditEvent._meta.concrete_fields
    shared = [getattr(rows[0], field.attname) for field in fields if field.attname in SHARED_COLUMNS]
    arrays = []
    for field in fields:
        if field.attname not in SHARED_COLUMNS:
            values = [getattr(row, field.attname) for row in rows]
            arrays.append(
                [json.dumps(value) for value in values] if field.get_internal_type() == "JSONField" else values
            )
    return [*shared, *arrays]


def _chain_append(rows: list[AuditEvent]) -> None:
    organization_id = rows[0].organization_id
    # Bound on the server and prepared: a thousand events are a few arrays, not 19,000 quoted literals.
    with tenant_connection.prepared_cursor() as cursor:
        cursor.execute(_head_sql(), [organization_id, len(rows)])
        last_seq, prev_hash = cursor.fetchone()
        for seq, row in enumerate(rows, start=last_seq - len(rows) + 1):
            row.seq, row.prev_hash = seq, prev_hash
            row.hash = prev_hash = event_hash(row)
        cursor.execute(_insert_sql(), [rows[-1].hash, organization_id, *_insert_params(rows)])


def field_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """`{field: [before, after]}` for the fields of `after` whose value differs from `before`'s."""
    return {name: [before.get(name), value] for name, value in after.items() if before.get(name) != value}
