"""The events core: recording, the context it reads, the chain it extends."""

import itertools
import threading
import uuid
from typing import Any

import pytest
from django.db import connection, connections
from django.test import Client

from events.chain import audit_event_data, event_hash
from events.context import OPERATOR, Actor, AuditContext, audit_context
from events.models import AuditChain, AuditEvent
from events.services import Pending, Target, record, record_many

pytestmark = pytest.mark.django_db

ORG = uuid.UUID("00000000-0000-4000-8000-00000000000a")
PORTAL = uuid.UUID("00000000-0000-4000-8000-00000000000b")


def _target(n: int = 1) -> Target:
    return Target(type="portal_user", id=str(uuid.UUID(int=n)), label=f"person{n}@example.com")


def test_it_records_the_context_and_the_change() -> None:
    context = AuditContext(
        via="api",
        actor=Actor(type="user", id="u-1", email="owner@acme.test"),
        ip_address="2001:0db8:0000::1",
        user_agent="curl/8",
        request_id="req-1",
    )
    with audit_context(context):
        event = record(
            action="portal.updated",
            organization_id=ORG,
            portal_id=PORTAL,
            target=Target(type="portal", id=str(PORTAL), label="Acme"),
            changes={"name": ["Old", "Acme"]},
        )
    stored = AuditEvent.objects.get(id=event.id)
    assert audit_event_data(stored) == {
        "id": str(event.id),
        "occurred_at": audit_event_data(event)["occurred_at"],
        "action": "portal.updated",
        "organization_id": str(ORG),
        "portal_id": str(PORTAL),
        "actor": {"type": "user", "id": "u-1", "email": "owner@acme.test"},
        "via": "api",
        "ip_address": "2001:db8::1",
        "user_agent": "curl/8",
        "target": {"type": "portal", "id": str(PORTAL), "label": "Acme"},
        "changes": {"name": ["Old", "Acme"]},
        "request_id": "req-1",
    }
    # What was hashed is what reads back (the insert is hand-written SQL: compare with the ORM's row).
    assert (stored.seq, stored.prev_hash, stored.hash) == (1, "", event.hash)
    assert event_hash(stored) == stored.hash


def test_outside_any_context_the_actor_is_the_system() -> None:
    event = record(action="invitation.expired", organization_id=ORG, target=_target())
    assert (event.via, event.actor_type, event.actor_id, event.request_id) == ("system", "system", "", "")


def test_an_explicit_actor_wins_over_the_context() -> None:
    with audit_context(AuditContext(via="cli", actor=OPERATOR)):
        event = record(
            action="invitation.accepted",
            organization_id=ORG,
            target=_target(),
            actor=Actor(type="portal_user", id="pu-1", email="pat@customer.test"),
        )
    assert (event.via, event.actor_type, event.actor_email) == ("cli", "portal_user", "pat@customer.test")


def test_each_event_follows_the_previous_one_in_its_organization() -> None:
    other = uuid.uuid4()
    first = record(action="portal.created", organization_id=ORG, target=_target(1))
    record(action="portal.created", organization_id=other, target=_target(2))
    second = record(action="portal.updated", organization_id=ORG, target=_target(3))
    assert (first.seq, second.seq) == (1, 2)
    assert second.prev_hash == first.hash
    head = AuditChain.objects.get(organization_id=ORG)
    assert (head.seq, head.hash) == (2, second.hash)


@pytest.mark.parametrize("count", [1, 50])
def test_a_bulk_write_costs_three_queries_whatever_its_size(count: int, django_assert_num_queries: Any) -> None:
    pending = [Pending(action="portal_user.invited", target=_target(n)) for n in range(count)]
    connection.set_schema_to_public()
    AuditEvent.objects.exists()  # the connection's search_path is set: that statement is not the write's
    info = "lock and advance the chain head; insert the events and store the head; find no webhook endpoint"
    with django_assert_num_queries(3, info=info):
        events = record_many(organization_id=ORG, portal_id=PORTAL, events=pending)
    assert [event.seq for event in events] == list(range(1, count + 1))
    assert AuditEvent.objects.filter(organization_id=ORG).count() == count
    stored = list(AuditEvent.objects.filter(organization_id=ORG).order_by("seq"))
    assert all(event_hash(event) == event.hash for event in stored)
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(stored))


def test_changes_never_carry_secrets() -> None:
    with pytest.raises(ValueError, match="password"):
        record(action="portal.updated", organization_id=ORG, target=_target(), changes={"password": ["a", "b"]})


def test_changes_are_stored_as_they_read_back() -> None:
    when = uuid.uuid4()
    event = record(action="portal.updated", organization_id=ORG, target=_target(), changes={"id": [None, when]})
    assert event.changes == {"id": [None, str(when)]}
    assert AuditEvent.objects.get(id=event.id).hash == event_hash(AuditEvent.objects.get(id=event.id))


def test_a_request_names_its_request_id() -> None:
    response = Client(HTTP_HOST="localhost").get("/healthz", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"
    invented = Client(HTTP_HOST="localhost").get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces")["X-Request-ID"]
    assert len(invented) == 32 and invented != "bad id with spaces"


def test_concurrent_writers_in_one_organization_do_not_fork_the_chain() -> None:
    """Eight threads, each on its own connection and committing, append 25 events each to one chain."""
    organization_id = uuid.uuid4()  # not a foreign key: no committed organization needed
    errors: list[BaseException] = []

    def writer() -> None:
        from django.db import transaction

        try:
            for n in range(25):
                with transaction.atomic():
                    record(action="portal.updated", organization_id=organization_id, target=_target(n))
        except BaseException as exc:  # reported by the test below
            errors.append(exc)
        finally:
            connections.close_all()

    def cleanup() -> None:
        AuditEvent.objects.filter(organization_id=organization_id).delete()
        AuditChain.objects.filter(organization_id=organization_id).delete()
        connections.close_all()

    threads = [threading.Thread(target=writer) for _ in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        stored = list(AuditEvent.objects.filter(organization_id=organization_id).order_by("seq"))
        assert [event.seq for event in stored] == list(range(1, 201))
        assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(stored))
    finally:
        cleaner = threading.Thread(target=cleanup)
        cleaner.start()
        cleaner.join()
    assert connection.in_atomic_block
