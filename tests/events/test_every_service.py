"""No change without its event, no event without its change: every write service records exactly one event
per entity it changed, in its own transaction, and a call that rolls back leaves none."""

import inspect
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

import customer_portal.services
import portals.domain_verification
import portals.services
from accounts.models import User
from customer_portal import services as cp
from customer_portal.emails import invitation_token
from customer_portal.models import Invitation, PortalSession, PortalUser, SignInToken
from events.models import AuditChain, AuditEvent
from portals.domain_verification import challenge_name
from portals.models import Domain, Portal
from tests.conftest import PORTAL_HOST, invite, mailed_code, mailed_link, make_portal, members, publish_challenge
from tests.dns_server import DnsZone
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.jobs import run_jobs

pytestmark = pytest.mark.django_db


@dataclass
class World:
    owner: User
    portal: Portal
    dns_zone: DnsZone
    settings: Any

    def member(self, email: str) -> PortalUser:
        return members(self.portal)[email]

    def in_portal(self, call: Callable[[], Any]) -> Any:
        with tenant_context(self.portal):
            return call()


def _invited(world: World, email: str = "new@customer.test") -> Invitation:
    invite(world.portal, email)
    with tenant_context(world.portal):
        return Invitation.objects.get(portal_user__email=email)


def _linked(world: World, email: str = "linked@customer.test") -> PortalUser:
    UserFactory(email=email)
    invite(world.portal, email)
    return world.member(email)


SIGNED_IN = "signed-in@customer.test"
NEW_PASSWORD = "quince harbour mosaic 4401"


def _session(world: World) -> PortalSession:
    account = UserFactory(email=SIGNED_IN)
    invite(world.portal, account.email)
    return world.in_portal(lambda: cp.portal_session_open(user=account, ip_address="127.0.0.1", user_agent="t"))


# Each case: what to set up (returns what the call needs), the call, and the events it must record.
def _case_portal_create(world: World, _: Any) -> None:
    make_portal(world.owner, name="Second portal")


def _case_portal_update(world: World, _: Any) -> None:
    portals.services.portal_update(portal=world.portal, name="Renamed", custom_domain="portal.acme.test")


def _case_portal_delete(world: World, _: Any) -> None:
    portals.services.portal_delete(portal=world.portal)


def _setup_pending_domain(world: World) -> None:
    portals.services.portal_update(portal=world.portal, custom_domain="portal.acme.test")


def _case_custom_domain_verify(world: World, _: Any) -> None:
    domain = Domain.objects.get(tenant=world.portal, is_custom=True)
    publish_challenge(
        world.dns_zone,
        {
            "custom_domain_verification": {
                "name": challenge_name(domain.domain),
                "value": domain.verification_token,
            }
        },
    )
    portals.domain_verification.custom_domain_verify(portal=world.portal)


def _case_custom_domains_verify_pending(world: World, _: Any) -> None:
    world.settings.DOMAIN_VERIFY_TIMEOUT = timedelta(0)
    portals.domain_verification.custom_domains_verify_pending(portal_id=world.portal.id)


def _case_portal_users_invite(world: World, _: Any) -> None:
    UserFactory(email="has-account@customer.test")
    world.in_portal(
        lambda: cp.portal_users_invite(
            portal=world.portal,
            entries=[
                cp.InviteEntry(email=e) for e in ["a@customer.test", "has-account@customer.test", "A@customer.test"]
            ],
            invited_by=world.owner,
        )
    )


def _setup_revoked(world: World) -> PortalUser:
    member = _linked(world)
    world.in_portal(lambda: cp.portal_user_revoke(portal_user_id=member.id))
    return member


def _case_portal_users_restore(world: World, member: PortalUser) -> None:
    world.in_portal(lambda: cp.portal_users_restore(portal=world.portal, ids=[member.id], invited_by=world.owner))


def _case_portal_user_remove(world: World, member: PortalUser) -> None:
    world.in_portal(lambda: cp.portal_user_remove(portal_user_id=member.id))


def _two_linked(world: World) -> list[PortalUser]:
    return [_linked(world), _linked(world, "other@customer.test")]


def _case_portal_users_remove(world: World, two: list[PortalUser]) -> None:
    world.in_portal(lambda: cp.portal_users_remove(ids=[two[0].id, two[1].id, uuid.uuid4()]))


def _case_portal_user_revoke(world: World, member: PortalUser) -> None:
    world.in_portal(lambda: cp.portal_user_revoke(portal_user_id=member.id))


def _case_portal_users_revoke(world: World, member: PortalUser) -> None:
    world.in_portal(lambda: cp.portal_users_revoke(ids=[member.id]))


def _case_invitation_create(world: World, _: Any) -> None:
    world.in_portal(
        lambda: cp.invitation_create(portal=world.portal, email="one@customer.test", invited_by=world.owner)
    )


def _case_invitation_create_again(world: World, invitation: Invitation) -> None:
    world.in_portal(
        lambda: cp.invitation_create(portal=world.portal, email=invitation.portal_user.email, invited_by=world.owner)
    )


def _case_invitation_resend(world: World, invitation: Invitation) -> None:
    world.in_portal(lambda: cp.invitation_resend(portal=world.portal, invitation_id=invitation.id))


def _case_invitations_resend(world: World, invitation: Invitation) -> None:
    world.in_portal(lambda: cp.invitations_resend(portal=world.portal, ids=[invitation.id, uuid.uuid4()]))


def _case_invitation_revoke(world: World, invitation: Invitation) -> None:
    world.in_portal(lambda: cp.invitation_revoke(invitation_id=invitation.id))


def _case_invitations_revoke(world: World, invitation: Invitation) -> None:
    world.in_portal(lambda: cp.invitations_revoke(ids=[invitation.id]))


def _case_invitation_accept(world: World, invitation: Invitation) -> None:
    token = invitation_token(invitation_id=invitation.id, delivery_key=invitation.delivery_key)
    world.in_portal(
        lambda: cp.invitation_accept(
            portal=world.portal, token=token, password=DEFAULT_PASSWORD, ip_address=None, user_agent=""
        )
    )


def _case_portal_session_open(world: World, _: Any) -> None:
    _session(world)


def _case_portal_session_end(world: World, session: PortalSession) -> None:
    world.in_portal(lambda: cp.portal_session_end(session_id=session.id))


def _case_account_portal_sessions_end(world: World, session: PortalSession) -> None:
    world.in_portal(lambda: cp.account_portal_sessions_end(user_id=session.portal_user.global_user_id))


def _case_portal_config_update(world: World, _: Any) -> None:
    world.in_portal(lambda: cp.portal_config_update(display_name="Acme customers", primary_color="#112233"))


def _case_feature_toggle(world: World, _: Any) -> None:
    world.in_portal(lambda: cp.feature_toggle(key="invoices"))


def _setup_expired(world: World) -> None:
    _invited(world)
    _session(world)
    past = timezone.now() - timedelta(seconds=1)
    with tenant_context(world.portal):
        Invitation.objects.update(expires_at=past)
        PortalSession.objects.update(expires_at=past)


def _case_portal_housekeeping(world: World, _: Any) -> None:
    world.in_portal(cp.portal_housekeeping)


def _case_portal_housekeeping_each(world: World, _: Any) -> None:
    cp.portal_housekeeping_each(portals=[world.portal])


def _mailed(world: World, purpose: str) -> str:
    """A member with a live session, and the text of the sign-in or reset e-mail sent to them."""
    _session(world)
    world.in_portal(
        lambda: cp.sign_in_token_request(portal=world.portal, email=SIGNED_IN, purpose=purpose, host=PORTAL_HOST)
    )
    run_jobs()
    return mail.outbox.pop().body


def _sign_in_mail(world: World) -> str:
    return _mailed(world, SignInToken.Purpose.EMAIL_SIGN_IN)


def _reset_link(world: World) -> str:
    return mailed_link(_mailed(world, SignInToken.Purpose.PASSWORD_RESET)).token


def _case_email_sign_in_by_link(world: World, body: str) -> None:
    token = mailed_link(body).token
    world.in_portal(lambda: cp.email_sign_in_by_link(token=token, ip_address=None, user_agent=""))


def _case_email_sign_in_by_code(world: World, body: str) -> None:
    code = mailed_code(body)
    world.in_portal(lambda: cp.email_sign_in_by_code(email=SIGNED_IN, code=code, ip_address=None, user_agent=""))


def _case_password_reset(world: World, token: str) -> None:
    world.in_portal(lambda: cp.password_reset(token=token, password=NEW_PASSWORD))


def _case_portal_password_change(world: World, session: PortalSession) -> None:
    world.in_portal(
        lambda: cp.portal_password_change(
            member=session.portal_user, current_password=DEFAULT_PASSWORD, password=NEW_PASSWORD,
            ip_address=None, user_agent="",
        )
    )  # fmt: skip


def _case_portal_user_name_update(world: World, member: PortalUser) -> None:
    world.in_portal(lambda: cp.portal_user_name_update(member=member, name="A new name"))


def _two_sessions(world: World) -> PortalSession:
    kept = _session(world)
    account = User.objects.get(email=SIGNED_IN)
    world.in_portal(lambda: cp.portal_session_open(user=account, ip_address=None, user_agent="another browser"))
    return kept


def _case_portal_user_sessions_end_others(world: World, kept: PortalSession) -> None:
    world.in_portal(lambda: cp.portal_user_sessions_end_others(member=kept.portal_user, keep_session_id=kept.id))


def _nothing(world: World) -> None:
    return None


CASES: dict[str, tuple[Callable[[World], Any], Callable[[World, Any], None], list[str]]] = {
    "portal_create": (_nothing, _case_portal_create, ["portal.created"]),
    "portal_update": (_nothing, _case_portal_update, ["portal.updated"]),
    "portal_delete": (_nothing, _case_portal_delete, ["portal.deleted"]),
    "custom_domain_verify": (_setup_pending_domain, _case_custom_domain_verify, ["portal.custom_domain.verified"]),
    "custom_domains_verify_pending": (
        _setup_pending_domain,
        _case_custom_domains_verify_pending,
        ["portal.custom_domain.failed"],
    ),
    "portal_users_invite": (_nothing, _case_portal_users_invite, ["portal_user.invited", "portal_user.linked"]),
    "portal_users_restore": (_setup_revoked, _case_portal_users_restore, ["portal_user.restored"]),
    "portal_user_remove": (_linked, _case_portal_user_remove, ["portal_user.removed"]),
    "portal_users_remove": (_two_linked, _case_portal_users_remove, ["portal_user.removed", "portal_user.removed"]),
    "portal_user_revoke": (_linked, _case_portal_user_revoke, ["portal_user.access_revoked"]),
    "portal_users_revoke": (_linked, _case_portal_users_revoke, ["portal_user.access_revoked"]),
    "invitation_create": (_nothing, _case_invitation_create, ["invitation.created"]),
    # Inviting a pending invitee again: the old link is revoked, a new invitation made (one event each).
    "invitation_create_again": (
        _invited,
        _case_invitation_create_again,
        ["invitation.created", "invitation.revoked"],
    ),
    "invitation_resend": (_invited, _case_invitation_resend, ["invitation.resent"]),
    "invitations_resend": (_invited, _case_invitations_resend, ["invitation.resent"]),
    "invitation_revoke": (_invited, _case_invitation_revoke, ["invitation.revoked"]),
    "invitations_revoke": (_invited, _case_invitations_revoke, ["invitation.revoked"]),
    "invitation_accept": (_invited, _case_invitation_accept, ["session.created", "invitation.accepted"]),
    "portal_session_open": (_nothing, _case_portal_session_open, ["portal_user.linked", "session.created"]),
    "portal_session_end": (_session, _case_portal_session_end, ["session.ended"]),
    "account_portal_sessions_end": (_session, _case_account_portal_sessions_end, ["session.ended"]),
    "email_sign_in_by_link": (_sign_in_mail, _case_email_sign_in_by_link, ["session.created"]),
    "email_sign_in_by_code": (_sign_in_mail, _case_email_sign_in_by_code, ["session.created"]),
    "password_reset": (_reset_link, _case_password_reset, ["session.ended"]),
    "portal_password_change": (_session, _case_portal_password_change, ["session.ended", "session.created"]),
    "portal_user_name_update": (_linked, _case_portal_user_name_update, ["portal_user.updated"]),
    "portal_user_sessions_end_others": (_two_sessions, _case_portal_user_sessions_end_others, ["session.ended"]),
    "portal_config_update": (_nothing, _case_portal_config_update, ["portal.config.updated"]),
    "feature_toggle": (_nothing, _case_feature_toggle, ["portal.feature.toggled"]),
    "portal_housekeeping": (_setup_expired, _case_portal_housekeeping, ["invitation.expired", "session.ended"]),
    "portal_housekeeping_each": (
        _setup_expired,
        _case_portal_housekeeping_each,
        ["invitation.expired", "session.ended"],
    ),
}

# Public functions of the service modules that change nothing an organization audits, and why.
NOT_AUDITED = {
    "portal_settings_initialize": "part of portal_create (its portal.created event)",
    "public_tenant_ensure": "the public tenant belongs to no organization",
    "invitation_get_by_token": "reads",
    "sign_in_token_get": "reads",
    "sign_in_token_request": "e-mails a one-time link; the sign-in or reset it leads to records its events",
    "portal_session_touch": "a session's sliding expiry, not a change anyone made",
    "custom_domain_pending_fields": "a helper of portal_create/portal_update",
    "www_twin": "a helper",
    "challenge_name": "a helper",
    "txt_lookup_error": "a DNS lookup",
    "unique_slug": "a helper",
    "is_hostname": "a helper",
    "portal_host": "a helper",
}


def test_every_public_service_is_walked_or_says_why_not() -> None:
    found = set()
    for module in (portals.services, portals.domain_verification, customer_portal.services):
        found |= {
            name
            for name, function in inspect.getmembers(module, inspect.isfunction)
            if function.__module__ == module.__name__ and not name.startswith("_")
        }
    assert found - set(CASES) - set(NOT_AUDITED) == set()


def _events(portal: Portal) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(organization_id=portal.organization_id).order_by("seq"))


@pytest.fixture
def world(owner: User, portal: Portal, dns_zone: DnsZone, settings: Any) -> World:
    return World(owner=owner, portal=portal, dns_zone=dns_zone, settings=settings)


@pytest.mark.parametrize("name", list(CASES))
def test_each_service_records_one_event_per_entity_it_changed(world: World, name: str) -> None:
    setup, call, expected = CASES[name]
    given = setup(world)
    before = len(_events(world.portal))

    call(world, given)

    recorded = _events(world.portal)[before:]
    assert sorted(event.action for event in recorded) == sorted(expected)
    assert {event.portal_id for event in recorded} <= {world.portal.id, *_new_portal_ids(world)}


def _new_portal_ids(world: World) -> set[uuid.UUID]:
    return set(Portal.objects.filter(organization_id=world.portal.organization_id).values_list("id", flat=True))


class _Abort(Exception):
    pass


@pytest.mark.parametrize("name", list(CASES))
def test_a_call_that_rolls_back_leaves_no_event(world: World, name: str) -> None:
    setup, call, _ = CASES[name]
    given = setup(world)
    before = [event.id for event in _events(world.portal)]
    head = AuditChain.objects.filter(organization_id=world.portal.organization_id).values_list("seq", "hash").first()

    with pytest.raises(_Abort), transaction.atomic():
        call(world, given)
        raise _Abort

    assert [event.id for event in _events(world.portal)] == before
    assert (
        AuditChain.objects.filter(organization_id=world.portal.organization_id).values_list("seq", "hash").first()
        == head
    )
