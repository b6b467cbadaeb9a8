import json
from collections.abc import Callable
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from accounts.models import User
from customer_portal.features import FEATURE_CATALOG
from customer_portal.models import Invitation, PortalSession, PortalUser
from customer_portal.services import InviteEntry, portal_user_revoke, portal_users_invite
from portals.models import Portal
from portals.selectors import portal_list_all
from tests.conftest import make_portal
from tests.customer_portal.conftest import PortalUserLogin, portal_login
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

DEFAULT_FEATURES = {"enabled": sum(f.enabled_by_default for f in FEATURE_CATALOG.values()), "total": 5}


class TtyStringIO(StringIO):
    """What an operator types at a terminal."""

    def isatty(self) -> bool:
        return True


def _run(name: str, *args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _scripted_sequence(portal: Portal, host: str) -> None:
    """Two people with accounts (linked) and one without (invited); the invitation expires; one of the
    linked logs in once on the portal's host; the other is revoked."""
    UserFactory(email="linked-a@example.com")
    UserFactory(email="linked-b@example.com")
    with tenant_context(portal):
        portal_users_invite(
            portal=portal,
            entries=[
                InviteEntry(email="linked-a@example.com"),
                InviteEntry(email="linked-b@example.com"),
                InviteEntry(email="invited@example.com"),
            ],
            invited_by=None,
            send_email=False,
        )
        Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    status, body = portal_login(host, "linked-a@example.com")
    assert status == 200, body
    with tenant_context(portal):
        portal_user_revoke(portal_user_id=PortalUser.objects.get(email="linked-b@example.com").id)


# portal_stats ----------------------------------------------------------------------


def test_portal_stats_json_is_the_body_of_get_stats(portal: Portal, host: str, admin_on_portal: APIClient) -> None:
    _scripted_sequence(portal, host)

    out, _ = _run("portal_stats", portal.slug, "--json")

    response = admin_on_portal.get("/v1/customer-portal/stats")
    assert response.status_code == 200
    assert json.loads(out) == response.json()
    assert json.loads(out) == {
        "users": {"total": 3, "active": 1, "invited": 1, "revoked": 1},
        "invitations": {"pending": 0, "accepted": 0, "expired": 1, "revoked": 0},
        "sessions": {"active": 1},
        "logins": {"last_24h": 1, "last_7d": 1, "last_30d": 1},
        "features": DEFAULT_FEATURES,
    }
    assert out.startswith('{\n  "users": {\n    "total": 3,')  # indented for people as well


def test_portal_stats_shows_a_readable_block_and_takes_an_id(portal: Portal, host: str) -> None:
    _scripted_sequence(portal, host)

    out, _ = _run("portal_stats", str(portal.id))

    assert out.splitlines() == [
        "Portal acme (Acme)",
        "  users        3 total: 1 active, 1 invited, 1 revoked",
        "  invitations  0 pending, 0 accepted, 1 expired, 0 revoked",
        "  sessions     1 active",
        "  logins       1 in 24h, 1 in 7d, 1 in 30d",
        f"  features     {DEFAULT_FEATURES['enabled']} of 5 enabled",
    ]


def test_portal_stats_of_a_new_portal_are_zeros(portal: Portal) -> None:
    out, _ = _run("portal_stats", portal.slug, "--json")

    assert json.loads(out) == {
        "users": {"total": 0, "active": 0, "invited": 0, "revoked": 0},
        "invitations": {"pending": 0, "accepted": 0, "expired": 0, "revoked": 0},
        "sessions": {"active": 0},
        "logins": {"last_24h": 0, "last_7d": 0, "last_30d": 0},
        "features": DEFAULT_FEATURES,
    }


def test_portal_stats_reads_the_named_portal_only(portal: Portal, host: str, admin: User) -> None:
    _scripted_sequence(portal, host)
    make_portal(admin, name="Quiet")
    schema_before = connection.schema_name

    out, _ = _run("portal_stats", "quiet", "--json")

    assert json.loads(out)["users"]["total"] == 0
    assert connection.schema_name == schema_before  # the command leaves the connection where it found it


@pytest.mark.parametrize("ref", ["no-such-portal", "7d8f5b8e-1111-4222-8333-944455556666", "public"])
def test_portal_stats_refuses_an_unknown_portal_with_one_line(ref: str, spare_pool: None) -> None:
    with pytest.raises(CommandError, match=rf"^No portal '{ref}'$"):
        _run("portal_stats", ref)


def test_portal_stats_refuses_a_spare(spare_pool: None) -> None:
    spare = Portal.objects.filter(is_spare=True).first()

    with pytest.raises(CommandError, match=r"^No portal "):
        _run("portal_stats", spare.slug)


# cleanup_portals -------------------------------------------------------------------


def _age(portal: Portal, *, invitation_of: str | None = None, sessions_of: User | None = None) -> None:
    """Put an invitation and/or the sessions of one account past their expiry."""
    past = timezone.now() - timedelta(minutes=1)
    with tenant_context(portal):
        if invitation_of is not None:
            Invitation.objects.filter(portal_user__email=invitation_of).update(expires_at=past)
        if sessions_of is not None:
            PortalSession.objects.filter(portal_user__global_user_id=sessions_of.id).update(expires_at=past)


def _invite(portal: Portal, *emails: str) -> None:
    with tenant_context(portal):
        portal_users_invite(
            portal=portal, entries=[InviteEntry(email=email) for email in emails], invited_by=None, send_email=False
        )


def test_cleanup_portals_stores_expired_invitations_and_ends_timed_out_sessions(
    portal: Portal, make_portal_user: Callable[..., PortalUserLogin]
) -> None:
    stale, fresh = make_portal_user("stale@example.com"), make_portal_user("fresh@example.com")
    _invite(portal, "late@example.com", "early@example.com")
    _age(portal, invitation_of="late@example.com", sessions_of=stale.account)

    out, err = _run("cleanup_portals")

    assert out.strip() == f"{portal_list_all().count()} portals: 1 invitations expired, 1 sessions ended"
    assert err == ""  # no bar when stderr is not a terminal
    with tenant_context(portal):
        statuses = dict(Invitation.objects.values_list("portal_user__email", "status"))
        assert statuses == {"late@example.com": "expired", "early@example.com": "pending"}
        assert PortalSession.objects.get(portal_user=stale.member).ended_at is not None
        assert PortalSession.objects.get(portal_user=fresh.member).ended_at is None
    assert fresh.client.get("/v1/customer-portal/me").status_code == 200


def test_cleanup_portals_twice_finds_nothing_the_second_time(
    portal: Portal, make_portal_user: Callable[..., PortalUserLogin]
) -> None:
    member = make_portal_user()
    _invite(portal, "late@example.com")
    _age(portal, invitation_of="late@example.com", sessions_of=member.account)
    _run("cleanup_portals", "--portal", portal.slug)

    out, _ = _run("cleanup_portals", "--portal", portal.slug)

    assert out.strip() == "1 portals: 0 invitations expired, 0 sessions ended"


def test_cleanup_portals_with_portal_cleans_that_one_only(portal: Portal, admin: User) -> None:
    other = make_portal(admin, name="Other")
    _invite(portal, "late@example.com")
    _invite(other, "late@example.com")
    _age(portal, invitation_of="late@example.com")
    _age(other, invitation_of="late@example.com")

    out, _ = _run("cleanup_portals", "--portal", str(portal.id))

    assert out.strip() == "1 portals: 1 invitations expired, 0 sessions ended"
    with tenant_context(other):
        assert Invitation.objects.get().status == Invitation.Status.PENDING


def test_cleanup_portals_reports_a_portal_without_schema_and_cleans_the_others(
    portal: Portal, admin: User, caplog: pytest.LogCaptureFixture
) -> None:
    broken = make_portal(admin, name="Broken")
    last = make_portal(admin, name="Last")
    for each in (portal, last):
        _invite(each, "late@example.com")
        _age(each, invitation_of="late@example.com")
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA {connection.ops.quote_name(broken.schema_name)} CASCADE")

    out = StringIO()
    with pytest.raises(CommandError, match=r"^failed: broken$"):
        call_command("cleanup_portals", stdout=out, stderr=StringIO())

    assert out.getvalue().strip() == f"{portal_list_all().count()} portals: 2 invitations expired, 0 sessions ended"
    for each in (portal, last):
        with tenant_context(each):
            assert Invitation.objects.get().status == Invitation.Status.EXPIRED
    assert "cleanup of portal broken" in caplog.text


def test_cleanup_portals_draws_a_progress_bar_only_at_a_terminal(portal: Portal) -> None:
    err = TtyStringIO()

    call_command("cleanup_portals", "--portal", portal.slug, stdout=StringIO(), stderr=err)

    assert "\r100%" in err.getvalue() and "1/1" in err.getvalue()
    assert "\x1b[" not in err.getvalue()  # the bar is not coloured as an error


@pytest.mark.parametrize("ref", ["no-such-portal", "7d8f5b8e-1111-4222-8333-944455556666"])
def test_cleanup_portals_refuses_an_unknown_portal_with_one_line(ref: str, spare_pool: None) -> None:
    with pytest.raises(CommandError, match=rf"^No portal '{ref}'$"):
        _run("cleanup_portals", "--portal", ref)
