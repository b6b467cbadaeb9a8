"""The audit events of the current portal (the connection's tenant): its organization and id, and how its
people, invitations and sessions are named as targets and actors."""

from collections.abc import Sequence
from typing import Any

from customer_portal.models import Invitation, PortalSession, PortalUser
from events.context import Actor
from events.models import AuditEvent
from events.services import Pending, Target, record_many
from portals.models import Portal
from portalsite.db import tenant_connection


def member_target(member: PortalUser) -> Target:
    return Target(type="portal_user", id=str(member.id), label=member.email)


def invitation_target(invitation: Invitation) -> Target:
    return Target(type="invitation", id=str(invitation.id), label=invitation.portal_user.email)


def session_target(session: PortalSession, member: PortalUser) -> Target:
    return Target(type="session", id=str(session.id), label=member.email)


def member_actor(member: PortalUser) -> Actor:
    return Actor(type="portal_user", id=str(member.id), email=member.email)


def portal_record(
    action: str, target: Target, changes: dict[str, Any] | None = None, *, actor: Actor | None = None
) -> AuditEvent:
    """Record one event of the current portal."""
    return portal_record_many([Pending(action=action, target=target, changes=changes)], actor=actor)[0]


def portal_record_many(events: Sequence[Pending], *, actor: Actor | None = None) -> list[AuditEvent]:
    """Record events of the current portal, in the caller's transaction (two queries for them all)."""
    portal = tenant_connection.tenant
    assert isinstance(portal, Portal) and portal.organization_id is not None, "inside a portal's schema only"
    return record_many(organization_id=portal.organization_id, portal_id=portal.id, events=events, actor=actor)
