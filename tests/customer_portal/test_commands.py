"""The customer_portal commands: portal_stats, cleanup_portals, list_portals and invite_portal_users."""

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from accounts.models import User
from customer_portal.features import FEATURE_CATALOG
from customer_portal.invite_rows import InviteEntry
from customer_portal.management.commands import invite_portal_users
from customer_portal.models import Invitation, PortalSession, PortalSettings, PortalUser
from customer_portal.services import portal_user_revoke, portal_users_invite
from portals.models import Portal, PortalMigration
from portals.provisioning import spare_pool_refill
from portals.selectors import portal_list_all
from tests.conftest import (
    PortalUserLogin,
    TtyStringIO,
    invite,
    make_portal,
    members,
    portal_login,
    run_command,
)
from tests.factories import UserFactory
from tests.jobs import run_jobs

pytestmark = pytest.mark.django_db

DEFAULT_FEATURES = {"enabled": sum(f.enabled_by_default for f in FEATURE_CATALOG.values()), "total": 5}


def _scripted_sequence(portal: Portal, portal_host: str) -> None:
    """Two people with accounts (linked) and one without (invited), none e-mailed; the invitation expires;
    one of the linked logs in once on the portal's host; the other is revoked. Then two more invitations
    with e-mails: one is delivered, the other still queued."""
    UserFactory(email="linked-a@example.com")
    UserFactory(email="linked-b@example.com")
    invite(portal, "linked-a@example.com", "linked-b@example.com", "invited@example.com")
    with tenant_context(portal):
        Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    status, body = portal_login(portal_host, "linked-a@example.com")
    assert status == 200, body
    with tenant_context(portal):
        portal_user_revoke(portal_user_id=PortalUser.objects.get(email="linked-b@example.com").id)
        portal_users_invite(portal=portal, entries=[InviteEntry(email="mailed@example.com")], invited_by=None)
        run_jobs(queues=["email"])
        portal_users_invite(portal=portal, entries=[InviteEntry(email="later@example.com")], invited_by=None)


# portal_stats ----------------------------------------------------------------------


def test_portal_stats_json_is_the_body_of_get_stats(
    portal: Portal, portal_host: str, owner_on_portal: APIClient
) -> None:
    _scripted_sequence(portal, portal_host)

    out, _ = run_command("portal_stats", portal.slug, "--json")

    response = owner_on_portal.get("/v1/customer-portal/stats")
    assert response.status_code == 200
    assert json.loads(out) == response.json()
    assert json.loads(out) == {
        "users": {"total": 5, "active": 1, "invited": 3, "revoked": 1},
        "invitations": {"pending": 2, "accepted": 0, "expired": 1, "revoked": 0},
        "invitation_emails": {"queued": 1, "sent": 1, "failed": 0},
        "sessions": {"active": 1},
        "logins": {"last_24h": 1, "last_7d": 1, "last_30d": 1},
        "features": DEFAULT_FEATURES,
    }
    assert out.startswith('{\n  "users": {\n    "total": 5,')  # indented for people as well


def test_portal_stats_shows_a_readable_block_and_takes_an_id(portal: Portal, portal_host: str) -> None:
    _scripted_sequence(portal, portal_host)

    out, _ = run_command("portal_stats", str(portal.id))

    assert out.splitlines() == [
        "Portal acme (Acme)",
        "  users        5 total: 1 active, 3 invited, 1 revoked",
        "  invitations  2 pending, 0 accepted, 1 expired, 0 revoked",
        "  e-mails      1 sent, 1 queued, 0 failed",
        "  sessions     1 active",
        "  logins       1 in 24h, 1 in 7d, 1 in 30d",
        f"  features     {DEFAULT_FEATURES['enabled']} of 5 enabled",
    ]


def test_portal_stats_of_a_new_portal_are_zeros(portal: Portal) -> None:
    out, _ = run_command("portal_stats", portal.slug, "--json")

    assert json.loads(out) == {
        "users": {"total": 0, "active": 0, "invited": 0, "revoked": 0},
        "invitations": {"pending": 0, "accepted": 0, "expired": 0, "revoked": 0},
        "invitation_emails": {"queued": 0, "sent": 0, "failed": 0},
        "sessions": {"active": 0},
        "logins": {"last_24h": 0, "last_7d": 0, "last_30d": 0},
        "features": DEFAULT_FEATURES,
    }


def test_portal_stats_reads_the_named_portal_only(portal: Portal, portal_host: str, owner: User) -> None:
    _scripted_sequence(portal, portal_host)
    invite(make_portal(owner, name="Quiet"), "quiet@example.com")
    schema_before = connection.schema_name

    out, _ = run_command("portal_stats", "quiet", "--json")

    assert json.loads(out)["users"] == {"total": 1, "active": 0, "invited": 1, "revoked": 0}
    assert connection.schema_name == schema_before  # the command leaves the connection where it found it


@pytest.mark.parametrize("ref", ["no-such-portal", "7d8f5b8e-1111-4222-8333-944455556666", "public"])
def test_portal_stats_refuses_an_unknown_portal_with_one_line(ref: str, spare_pool: None) -> None:
    with pytest.raises(CommandError, match=rf"^No portal '{ref}'$"):
        run_command("portal_stats", ref)


def test_portal_stats_refuses_a_spare(spare_pool: None) -> None:
    spare = Portal.objects.filter(is_spare=True).first()

    with pytest.raises(CommandError, match=r"^No portal "):
        run_command("portal_stats", spare.slug)


# cleanup_portals -------------------------------------------------------------------


def _age(portal: Portal, *, invitation_of: str | None = None, sessions_of: User | None = None) -> None:
    """Put an invitation and/or the sessions of one account past their expiry."""
    past = timezone.now() - timedelta(minutes=1)
    with tenant_context(portal):
        if invitation_of is not None:
            Invitation.objects.filter(portal_user__email=invitation_of).update(expires_at=past)
        if sessions_of is not None:
            PortalSession.objects.filter(portal_user__global_user_id=sessions_of.id).update(expires_at=past)


def test_cleanup_portals_stores_expired_invitations_and_ends_timed_out_sessions(
    portal: Portal, make_portal_user: Callable[..., PortalUserLogin]
) -> None:
    stale, fresh = make_portal_user("stale@example.com"), make_portal_user("fresh@example.com")
    invite(portal, "late@example.com", "early@example.com")
    _age(portal, invitation_of="late@example.com", sessions_of=stale.account)

    out, err = run_command("cleanup_portals")

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
    logged_in = make_portal_user()
    invite(portal, "late@example.com")
    _age(portal, invitation_of="late@example.com", sessions_of=logged_in.account)
    run_command("cleanup_portals", "--portal", portal.slug)

    out, _ = run_command("cleanup_portals", "--portal", portal.slug)

    assert out.strip() == "1 portals: 0 invitations expired, 0 sessions ended"


def test_cleanup_portals_with_portal_cleans_that_one_only(portal: Portal, owner: User) -> None:
    other = make_portal(owner, name="Other")
    invite(portal, "late@example.com")
    invite(other, "other-late-1@example.com", "other-late-2@example.com")  # two: a mix-up changes the count
    _age(portal, invitation_of="late@example.com")
    for email in ("other-late-1@example.com", "other-late-2@example.com"):
        _age(other, invitation_of=email)

    out, _ = run_command("cleanup_portals", "--portal", str(portal.id))

    assert out.strip() == "1 portals: 1 invitations expired, 0 sessions ended"
    with tenant_context(portal):
        assert Invitation.objects.get().status == Invitation.Status.EXPIRED
    with tenant_context(other):
        assert list(Invitation.objects.values_list("status", flat=True)) == [Invitation.Status.PENDING] * 2


def test_cleanup_portals_reports_a_portal_without_schema_and_cleans_the_others(
    portal: Portal, owner: User, caplog: pytest.LogCaptureFixture
) -> None:
    broken = make_portal(owner, name="Broken")
    last = make_portal(owner, name="Last")
    for each in (portal, last):
        invite(each, "late@example.com")
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
    assert "housekeeping of portal broken" in caplog.text


def test_cleanup_portals_draws_a_progress_bar_only_at_a_terminal(portal: Portal) -> None:
    err = TtyStringIO()

    call_command("cleanup_portals", "--portal", portal.slug, stdout=StringIO(), stderr=err)

    assert "\r100%" in err.getvalue() and "1/1" in err.getvalue()
    assert "\x1b[" not in err.getvalue()  # the bar is not coloured as an error


@pytest.mark.parametrize("ref", ["no-such-portal", "7d8f5b8e-1111-4222-8333-944455556666"])
def test_cleanup_portals_refuses_an_unknown_portal_with_one_line(ref: str, spare_pool: None) -> None:
    with pytest.raises(CommandError, match=rf"^No portal '{ref}'$"):
        run_command("cleanup_portals", "--portal", ref)


# list_portals ----------------------------------------------------------------------


def test_list_portals_shows_a_table_of_real_portals_only(organization, portal, outsider):
    other = make_portal(outsider, name="Other one", slug="other-one", custom_domain="help.globex.test")
    invite(portal, "a@example.com", "b@example.com")  # different user counts: a mix-up of rows shows
    invite(other, "c@example.com")
    spare_pool_refill(size=1)  # at least one spare to hide, whatever earlier tests took (rolled back)
    spares = list(Portal.objects.filter(is_spare=True).values_list("slug", "schema_name"))
    assert spares
    PortalMigration.objects.create(portal=other, state=PortalMigration.State.FAILED, error="boom")

    out, _ = run_command("list_portals")

    lines = out.splitlines()
    header = ["id", "slug", "name", "organization", "domain", "custom", "domain", "users", "migrations"]
    assert lines[0].split() == header
    row = next(line for line in lines if line.startswith(str(portal.id))).split()
    assert row == [str(portal.id), "acme", "Acme", "acme-corp", "acme.localhost", "-", "2", "-"]
    other_row = next(line for line in lines if line.startswith(str(other.id))).split()
    assert other_row == [
        str(other.id), "other-one", "Other", "one", "globex", "other-one.localhost", "help.globex.test", "(pending)",
        "1", "failed",
    ]  # fmt: skip
    for slug, schema_name in spares:
        assert slug not in out and schema_name not in out
    assert "Public" not in out


def test_list_portals_filters_by_org(organization, portal, outsider):
    other = make_portal(outsider, name="Other one", slug="other-one")

    out, _ = run_command("list_portals", "--org", organization.slug)

    assert str(portal.id) in out
    assert str(other.id) not in out


def test_list_portals_json_has_the_portal_response_shape(organization, owner, portal, django_assert_num_queries):
    second = make_portal(owner, name="Second", custom_domain="help.example.com")
    invite(portal, "a@example.com", "b@example.com")
    invite(second, "c@example.com")  # each portal its own count: a mix-up shows
    assert Portal.objects.filter(organization=organization).count() == 2  # also puts the connection back on public

    PortalMigration.objects.create(
        portal=portal, state=PortalMigration.State.CURRENT, last_applied="customer_portal.0003_primary_color_format",
        duration_ms=12.5, finished_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )  # fmt: skip

    with django_assert_num_queries(5, info="organization, portals, domains, user counts, migration outcomes"):
        out, _ = run_command("list_portals", "--org", str(organization.id), "--json")

    listed = json.loads(out)
    assert [item["slug"] for item in listed] == ["acme", "second"]
    assert all(
        set(item)
        == {
            "id",
            "organization_id",
            "name",
            "slug",
            "domain",
            "custom_domain",
            "custom_domain_status",
            "custom_domain_verification",
            "user_count",
            "created_at",
            "updated_at",
            "migration",
        }
        for item in listed
    )
    first, second = listed
    assert first["id"] == str(portal.id)
    assert first["organization_id"] == str(organization.id)
    assert (first["domain"], first["custom_domain"], first["user_count"]) == ("acme.localhost", None, 2)
    assert (second["custom_domain"], second["custom_domain_status"], second["user_count"]) == (
        "help.example.com", "pending", 1
    )  # fmt: skip
    assert first["migration"] == {
        "state": "current",
        "last_applied": "customer_portal.0003_primary_color_format",
        "error": None,
        "duration_ms": 12.5,
        "finished_at": "2026-01-02T03:04:05+00:00",
    }
    assert second["migration"] is None  # not seen by migrate_portals yet


def test_list_portals_json_is_an_empty_list_for_an_org_without_portals(organization, outsider_portal):
    out, _ = run_command("list_portals", "--org", organization.slug, "--json")

    assert json.loads(out) == []


def test_list_portals_refuses_an_unknown_org(spare_pool):
    with pytest.raises(CommandError, match=r"^No organization 'nope'$"):
        run_command("list_portals", "--org", "nope")


# invite_portal_users ---------------------------------------------------------------


def _write_csv(tmp_path: Path, text: str, name: str = "users.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_invite_portal_users_invites_links_and_counts(portal, tmp_path, django_capture_on_commit_callbacks):
    UserFactory(email="Known@Example.com")
    path = _write_csv(
        tmp_path, "email,name,role\nnew@example.com,New Person,manager\nknown@example.com,,\nplain@example.com,,\n"
    )

    with django_capture_on_commit_callbacks(execute=True):
        out, _ = run_command("invite_portal_users", portal.slug, "--csv", path)
    run_jobs()  # the e-mail jobs the change queued

    assert out.strip() == "invited 2, linked 1, already member 0"
    invited = members(portal)
    assert (invited["new@example.com"].name, invited["new@example.com"].role) == ("New Person", "manager")
    assert invited["new@example.com"].status == PortalUser.Status.INVITED
    assert invited["known@example.com"].status == PortalUser.Status.ACTIVE
    assert invited["plain@example.com"].role == PortalUser.Role.MEMBER
    with tenant_context(portal):
        assert Invitation.objects.count() == 2
    assert sorted(message.to[0] for message in mail.outbox) == [
        "known@example.com",
        "new@example.com",
        "plain@example.com",
    ]


def test_invite_portal_users_counts_existing_members_and_sends_nothing_with_no_email(
    portal, tmp_path, django_capture_on_commit_callbacks
):
    invite(portal, "old@example.com")
    path = _write_csv(tmp_path, "email\nOLD@example.com\nnew@example.com\n")

    with django_capture_on_commit_callbacks(execute=True):
        out, _ = run_command("invite_portal_users", str(portal.id), "--csv", path, "--no-email")
    run_jobs()  # the command queued no e-mail: nothing to run

    assert out.strip() == "invited 1, linked 0, already member 1"
    assert mail.outbox == []
    assert set(members(portal)) == {"old@example.com", "new@example.com"}


def test_invite_portal_users_invites_in_batches(portal, tmp_path, monkeypatch):
    monkeypatch.setattr(invite_portal_users, "BATCH_SIZE", 2)
    emails = [f"person{n}@example.com" for n in range(5)]
    path = _write_csv(tmp_path, "email\n" + "\n".join(emails) + "\n")

    out, _ = run_command("invite_portal_users", portal.slug, "--csv", path, "--no-email")

    assert out.strip() == "invited 5, linked 0, already member 0"
    assert set(members(portal)) == set(emails)


def test_invite_portal_users_draws_a_progress_bar_only_at_a_terminal(portal, tmp_path):
    path = _write_csv(tmp_path, "email\na@example.com\nb@example.com\n")
    err = TtyStringIO()

    call_command("invite_portal_users", portal.slug, "--csv", path, "--no-email", stdout=StringIO(), stderr=err)

    assert "\r100%" in err.getvalue() and "2/2" in err.getvalue()
    assert "\x1b[" not in err.getvalue()  # the bar is not coloured as an error
    _, piped = run_command("invite_portal_users", portal.slug, "--csv", path, "--no-email")
    assert piped == ""


def test_invite_portal_users_skips_a_repeated_email_and_says_so(portal, tmp_path):
    path = _write_csv(tmp_path, "email,name\na@example.com,First\nA@example.com,Second\n")

    out, err = run_command("invite_portal_users", portal.slug, "--csv", path, "--no-email")

    assert out.strip() == "invited 1, linked 0, already member 0"
    assert "Skipped 1 row(s)" in err
    assert members(portal)["a@example.com"].name == "First"


def test_invite_portal_users_reports_every_bad_row_by_line_and_writes_nothing(portal, tmp_path):
    with tenant_context(portal):
        PortalSettings.objects.filter(id=1).update(allowed_email_domains=["example.com"])
    path = _write_csv(
        tmp_path,
        "email,name,role\n"
        "good@example.com,Good,member\n"  # line 2
        "not-an-email,,\n"  # line 3
        "x@example.com,,owner\n"  # line 4
        "someone@elsewhere.org,,\n"  # line 5
        "ok@example.com,Ok,Manager\n"  # line 6
        f"long@example.com,{'n' * 151},\n"  # line 7
        "extra@example.com,,member,surplus\n",  # line 8
    )

    err = StringIO()
    with pytest.raises(CommandError, match=r"^5 bad row\(s\) in .*users\.csv; nothing was invited$"):
        call_command("invite_portal_users", portal.slug, "--csv", path, stdout=StringIO(), stderr=err)

    err_lines = err.getvalue().splitlines()
    assert [line.split(":")[0] for line in err_lines] == ["line 3", "line 4", "line 5", "line 7", "line 8"]
    assert "'not-an-email' is not a valid e-mail address" in err_lines[0]
    assert "role 'owner' is not one of member, manager" in err_lines[1]
    assert "only addresses at example.com may be invited" in err_lines[2]
    assert "name is longer than 150" in err_lines[3]
    assert "more values than email,name,role" in err_lines[4]
    assert members(portal) == {}


def _run_err_lines(portal: Portal, path: str) -> list[str]:
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("invite_portal_users", portal.slug, "--csv", path, stdout=StringIO(), stderr=err)
    return err.getvalue().splitlines()


def test_invite_portal_users_counts_lines_of_multi_line_fields(portal, tmp_path):
    path = _write_csv(tmp_path, 'email,name\na@example.com,"Two\nlines"\nbad,x\n')

    assert [line.split(":")[0] for line in _run_err_lines(portal, path)] == ["line 4"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,role\nA,member\n", "needs a header line with an email column"),
        ("", "needs a header line with an email column"),
        ("email,rol\na@example.com,member\n", "unknown column(s) 'rol'"),
        ("email,name,role\n", "has no rows to invite"),
    ],
)
def test_invite_portal_users_refuses_an_unusable_csv_with_one_line(portal, tmp_path, text, message):
    path = _write_csv(tmp_path, text)

    with pytest.raises(CommandError) as excinfo:
        run_command("invite_portal_users", portal.slug, "--csv", path)

    assert message in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_invite_portal_users_refuses_a_missing_or_undecodable_file(portal, tmp_path):
    with pytest.raises(CommandError, match=r"^Cannot read .*missing\.csv: No such file or directory$"):
        run_command("invite_portal_users", portal.slug, "--csv", str(tmp_path / "missing.csv"))

    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("email,name\nj@example.com,Jos\xe9\n".encode("latin-1"))
    with pytest.raises(CommandError, match="is not a readable UTF-8 CSV file"):
        run_command("invite_portal_users", portal.slug, "--csv", str(latin1))
    assert members(portal) == {}


def test_invite_portal_users_reads_a_spreadsheet_export_with_a_byte_order_mark(portal, tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text("email,name\r\na@example.com,A\r\n", encoding="utf-8-sig")

    out, _ = run_command("invite_portal_users", portal.slug, "--csv", str(path), "--no-email")

    assert out.strip() == "invited 1, linked 0, already member 0"


def test_invite_portal_users_refuses_an_unknown_portal(tmp_path):
    path = _write_csv(tmp_path, "email\na@example.com\n")

    with pytest.raises(CommandError, match=r"^No portal 'nope'$"):
        run_command("invite_portal_users", "nope", "--csv", path)
