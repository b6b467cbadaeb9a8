import json
import uuid
from io import StringIO
from pathlib import Path

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import connection
from django_tenants.utils import tenant_context

from accounts.models import Organization, OrgMembership, User
from customer_portal.management.commands import invite_portal_users
from customer_portal.models import Invitation, PortalSettings, PortalUser
from customer_portal.services import InviteEntry, portal_users_invite
from portals.models import Domain, Portal
from portals.provisioning import spare_pool_refill
from tests.conftest import make_portal
from tests.factories import OrganizationFactory, OrgMembershipFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("spare_pool")]


class TtyStringIO(StringIO):
    """What an operator types at a terminal."""

    def isatty(self) -> bool:
        return True


def _run(name: str, *args: str, **options: object) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(name, *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def _organization(admin: User) -> Organization:
    return OrgMembership.objects.get(user=admin).organization


def _schema_exists(schema_name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", [schema_name])
        return cursor.fetchone() is not None


def _write_csv(tmp_path: Path, text: str, name: str = "users.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _members(portal: Portal) -> dict[str, PortalUser]:
    with tenant_context(portal):
        return {member.email: member for member in PortalUser.objects.all()}


@pytest.fixture
def portal(admin: User) -> Portal:
    return make_portal(admin, name="Acme support", slug="acme-support")


# create_portal ---------------------------------------------------------------------


def test_create_portal_prints_the_id_of_a_portal_in_the_org(admin):
    organization = _organization(admin)

    out, err = _run("create_portal", "--org", organization.slug, "--name", "Acme support")

    portal = Portal.objects.get(id=uuid.UUID(out.strip()))
    assert (portal.organization, portal.name, portal.slug, portal.is_spare) == (
        organization,
        "Acme support",
        "acme-support",
        False,
    )
    assert _schema_exists(portal.schema_name)
    assert "acme-support.localhost" in err


def test_create_portal_takes_an_org_id_a_slug_and_a_custom_domain(admin):
    organization = _organization(admin)

    out, _ = _run(
        "create_portal",
        "--org",
        str(organization.id),
        "--name",
        "Help",
        "--slug",
        "help-desk",
        "--custom-domain",
        "Help.Example.com",
    )

    portal = Portal.objects.get(id=uuid.UUID(out.strip()))
    assert portal.slug == "help-desk"
    assert set(Domain.objects.filter(tenant=portal).values_list("domain", "is_custom")) == {
        ("help-desk.localhost", False),
        ("help.example.com", True),
    }


def test_create_portal_puts_the_portal_in_the_named_org_when_its_admin_has_several(admin):
    other = OrgMembershipFactory(user=admin).organization

    out, _ = _run("create_portal", "--org", other.slug, "--name", "Second")

    assert Portal.objects.get(id=uuid.UUID(out.strip())).organization == other


def test_create_portal_is_made_by_the_operator_not_by_one_of_the_org_admins(admin):
    organization = _organization(admin)
    OrgMembershipFactory(organization=organization)  # a later admin

    out, _ = _run("create_portal", "--org", organization.slug, "--name", "Acme support")

    created = Portal.objects.get(id=uuid.UUID(out.strip()))
    assert created.organization == organization
    assert created.created_by is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--slug", "Bad_Slug"], "Use 3-63 lower-case letters, digits and inner hyphens."),
        (["--slug", "admin"], "The slug 'admin' is reserved."),
        (["--custom-domain", "https://x.example.com/"], "Enter a host name such as portal.example.com"),
        (["--custom-domain", "x.localhost"], "Custom domains cannot be under localhost."),
    ],
)
def test_create_portal_refuses_what_the_service_refuses_with_its_message(admin, extra, message):
    organization = _organization(admin)
    portals_before = Portal.objects.count()

    with pytest.raises(CommandError) as excinfo:
        _run("create_portal", "--org", organization.slug, "--name", "Acme", *extra)

    assert str(excinfo.value).startswith(message)
    assert "\n" not in str(excinfo.value)
    assert Portal.objects.count() == portals_before


def test_create_portal_refuses_a_taken_slug(admin, portal):
    with pytest.raises(CommandError, match=r"^The slug 'acme-support' is already taken\.$"):
        _run("create_portal", "--org", _organization(admin).slug, "--name", "Again", "--slug", "acme-support")


@pytest.mark.parametrize("ref", ["no-such-org", "7d8f5b8e-1111-4222-8333-944455556666"])
def test_create_portal_refuses_an_unknown_org(ref):
    with pytest.raises(CommandError, match=rf"^No organization '{ref}'$"):
        _run("create_portal", "--org", ref, "--name", "Acme")


def test_create_portal_refuses_a_sandbox_org(make_admin):
    sandbox = _organization(make_admin(environment=Organization.Environment.SANDBOX))

    with pytest.raises(CommandError, match="is a sandbox"):
        _run("create_portal", "--org", sandbox.slug, "--name", "Acme")

    assert not Portal.objects.filter(organization=sandbox).exists()


def test_create_portal_needs_no_org_admin_to_act_for(spare_pool):
    organization = OrganizationFactory()
    OrgMembershipFactory(organization=organization, role=OrgMembership.Role.MEMBER)

    out, _ = _run("create_portal", "--org", organization.slug, "--name", "Acme")

    assert Portal.objects.get(id=uuid.UUID(out.strip())).organization == organization


# delete_portal ---------------------------------------------------------------------


def test_delete_portal_with_yes_drops_the_portal_and_its_schema(portal):
    out, _ = _run("delete_portal", portal.slug, "--yes", stdin=StringIO())

    assert "Deleted portal acme-support" in out
    assert not Portal.objects.filter(id=portal.id).exists()
    assert not Domain.objects.filter(domain="acme-support.localhost").exists()
    assert not _schema_exists(portal.schema_name)


def test_delete_portal_takes_an_id(portal):
    _run("delete_portal", str(portal.id), "--yes")

    assert not Portal.objects.filter(id=portal.id).exists()


def test_delete_portal_asks_at_a_terminal_and_deletes_on_yes(portal):
    out, _ = _run("delete_portal", portal.slug, stdin=TtyStringIO("y\n"))

    assert "Drop portal acme-support and all its data? [y/N]" in out
    assert not Portal.objects.filter(id=portal.id).exists()


@pytest.mark.parametrize("answer", ["n\n", "\n", ""])
def test_delete_portal_keeps_the_portal_unless_the_answer_is_yes(portal, answer):
    with pytest.raises(CommandError, match=r"^Aborted; nothing was deleted$"):
        _run("delete_portal", portal.slug, stdin=TtyStringIO(answer))

    assert Portal.objects.filter(id=portal.id).exists()
    assert _schema_exists(portal.schema_name)


def test_delete_portal_refuses_without_yes_when_stdin_is_not_a_terminal(portal):
    with pytest.raises(CommandError, match="nothing was deleted") as excinfo:
        _run("delete_portal", portal.slug, stdin=StringIO("y\n"))  # piped: even a "y" is not a confirmation

    assert "\n" not in str(excinfo.value)
    assert Portal.objects.filter(id=portal.id).exists()


def test_delete_portal_reads_sys_stdin_by_default(portal, monkeypatch):
    monkeypatch.setattr("sys.stdin", StringIO("y\n"))

    with pytest.raises(CommandError, match="nothing was deleted"):
        _run("delete_portal", portal.slug)

    monkeypatch.setattr("sys.stdin", TtyStringIO("yes\n"))
    _run("delete_portal", portal.slug)
    assert not Portal.objects.filter(id=portal.id).exists()


@pytest.mark.parametrize("ref", ["no-such-portal", "7d8f5b8e-1111-4222-8333-944455556666"])
def test_delete_portal_refuses_an_unknown_portal(ref):
    with pytest.raises(CommandError, match=rf"^No portal '{ref}'$"):
        _run("delete_portal", ref, "--yes")


def test_delete_portal_never_touches_a_spare_or_the_public_tenant():
    spare = Portal.objects.filter(is_spare=True).first()

    for ref in (spare.slug, str(spare.id), "public"):
        with pytest.raises(CommandError, match=r"^No portal"):
            _run("delete_portal", ref, "--yes")

    assert _schema_exists(spare.schema_name)


# list_portals ----------------------------------------------------------------------


def test_list_portals_shows_a_table_of_real_portals_only(admin, portal):
    other = make_portal(OrgMembershipFactory().user, name="Other one", slug="other-one")
    spare_pool_refill(size=1)  # at least one spare to hide, whatever earlier tests took (rolled back)
    spares = list(Portal.objects.filter(is_spare=True).values_list("slug", "schema_name"))
    assert spares

    out, _ = _run("list_portals")

    lines = out.splitlines()
    assert lines[0].split() == ["id", "slug", "name", "organization", "domain", "custom", "domain", "users"]
    row = next(line for line in lines if line.startswith(str(portal.id))).split()
    assert row == [
        str(portal.id),
        "acme-support",
        "Acme",
        "support",
        _organization(admin).slug,
        "acme-support.localhost",
        "-",
        "0",
    ]
    assert any(line.startswith(str(other.id)) for line in lines)
    for slug, schema_name in spares:
        assert slug not in out and schema_name not in out
    assert "Public" not in out


def test_list_portals_filters_by_org(admin, portal):
    other = make_portal(OrgMembershipFactory().user, name="Other one", slug="other-one")

    out, _ = _run("list_portals", "--org", _organization(admin).slug)

    assert str(portal.id) in out
    assert str(other.id) not in out


def test_list_portals_json_has_the_portal_response_shape(admin, portal, django_assert_num_queries):
    make_portal(admin, name="Second", custom_domain="help.example.com")
    with tenant_context(portal):
        portal_users_invite(
            portal=portal,
            entries=[InviteEntry(email="a@example.com"), InviteEntry(email="b@example.com")],
            invited_by=None,
            send_email=False,
        )
    organization = _organization(admin)

    with django_assert_num_queries(4, info="organization, portals, domains, user counts"):
        out, _ = _run("list_portals", "--org", str(organization.id), "--json")

    listed = json.loads(out)
    assert [item["slug"] for item in listed] == ["acme-support", "second"]
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
        }
        for item in listed
    )
    first, second = listed
    assert first["id"] == str(portal.id)
    assert first["organization_id"] == str(organization.id)
    assert (first["domain"], first["custom_domain"], first["user_count"]) == ("acme-support.localhost", None, 2)
    assert (second["custom_domain"], second["custom_domain_status"], second["user_count"]) == (
        "help.example.com", "pending", 0
    )  # fmt: skip


def test_list_portals_json_is_an_empty_list_for_an_org_without_portals(admin):
    out, _ = _run("list_portals", "--org", _organization(admin).slug, "--json")

    assert json.loads(out) == []


def test_list_portals_refuses_an_unknown_org():
    with pytest.raises(CommandError, match=r"^No organization 'nope'$"):
        _run("list_portals", "--org", "nope")


# invite_portal_users ---------------------------------------------------------------


def test_invite_portal_users_invites_links_and_counts(portal, tmp_path, django_capture_on_commit_callbacks):
    UserFactory(email="Known@Example.com")
    path = _write_csv(
        tmp_path, "email,name,role\nnew@example.com,New Person,manager\nknown@example.com,,\nplain@example.com,,\n"
    )

    with django_capture_on_commit_callbacks(execute=True):
        out, _ = _run("invite_portal_users", portal.slug, "--csv", path)

    assert out.strip() == "invited 2, linked 1, already member 0"
    members = _members(portal)
    assert (members["new@example.com"].name, members["new@example.com"].role) == ("New Person", "manager")
    assert members["new@example.com"].status == PortalUser.Status.INVITED
    assert members["known@example.com"].status == PortalUser.Status.ACTIVE
    assert members["plain@example.com"].role == PortalUser.Role.MEMBER
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
    with tenant_context(portal):
        portal_users_invite(portal=portal, entries=[InviteEntry(email="old@example.com")], invited_by=None)
    path = _write_csv(tmp_path, "email\nOLD@example.com\nnew@example.com\n")

    with django_capture_on_commit_callbacks(execute=True):
        out, _ = _run("invite_portal_users", str(portal.id), "--csv", path, "--no-email")

    assert out.strip() == "invited 1, linked 0, already member 1"
    assert mail.outbox == []
    assert set(_members(portal)) == {"old@example.com", "new@example.com"}


def test_invite_portal_users_invites_in_batches(portal, tmp_path, monkeypatch):
    monkeypatch.setattr(invite_portal_users, "BATCH_SIZE", 2)
    emails = [f"person{n}@example.com" for n in range(5)]
    path = _write_csv(tmp_path, "email\n" + "\n".join(emails) + "\n")

    out, _ = _run("invite_portal_users", portal.slug, "--csv", path, "--no-email")

    assert out.strip() == "invited 5, linked 0, already member 0"
    assert set(_members(portal)) == set(emails)


def test_invite_portal_users_draws_a_progress_bar_only_at_a_terminal(portal, tmp_path):
    path = _write_csv(tmp_path, "email\na@example.com\nb@example.com\n")
    err = TtyStringIO()

    call_command("invite_portal_users", portal.slug, "--csv", path, "--no-email", stdout=StringIO(), stderr=err)

    assert "\r100%" in err.getvalue() and "2/2" in err.getvalue()
    assert "\x1b[" not in err.getvalue()  # the bar is not coloured as an error
    _, piped = _run("invite_portal_users", portal.slug, "--csv", path, "--no-email")
    assert piped == ""


def test_invite_portal_users_skips_a_repeated_email_and_says_so(portal, tmp_path):
    path = _write_csv(tmp_path, "email,name\na@example.com,First\nA@example.com,Second\n")

    out, err = _run("invite_portal_users", portal.slug, "--csv", path, "--no-email")

    assert out.strip() == "invited 1, linked 0, already member 0"
    assert "Skipped 1 row(s)" in err
    assert _members(portal)["a@example.com"].name == "First"


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
    assert _members(portal) == {}


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
        _run("invite_portal_users", portal.slug, "--csv", path)

    assert message in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_invite_portal_users_refuses_a_missing_or_undecodable_file(portal, tmp_path):
    with pytest.raises(CommandError, match=r"^Cannot read .*missing\.csv: No such file or directory$"):
        _run("invite_portal_users", portal.slug, "--csv", str(tmp_path / "missing.csv"))

    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("email,name\nj@example.com,Jos\xe9\n".encode("latin-1"))
    with pytest.raises(CommandError, match="is not a readable UTF-8 CSV file"):
        _run("invite_portal_users", portal.slug, "--csv", str(latin1))
    assert _members(portal) == {}


def test_invite_portal_users_reads_a_spreadsheet_export_with_a_byte_order_mark(portal, tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text("email,name\r\na@example.com,A\r\n", encoding="utf-8-sig")

    out, _ = _run("invite_portal_users", portal.slug, "--csv", str(path), "--no-email")

    assert out.strip() == "invited 1, linked 0, already member 0"


def test_invite_portal_users_refuses_an_unknown_portal(tmp_path):
    path = _write_csv(tmp_path, "email\na@example.com\n")

    with pytest.raises(CommandError, match=r"^No portal 'nope'$"):
        _run("invite_portal_users", "nope", "--csv", path)


# refill_spare_schemas --------------------------------------------------------------


def test_refill_spare_schemas_tops_the_pool_up_to_size():
    spares = Portal.objects.filter(is_spare=True).count()

    out, _ = _run("refill_spare_schemas", "--size", str(spares + 1))

    assert out.strip() == f"Created 1 spare schema(s); the pool now holds {spares + 1}."
    new = Portal.objects.filter(is_spare=True).order_by("-created_at").first()
    assert new.organization is None and _schema_exists(new.schema_name)


def test_refill_spare_schemas_creates_nothing_when_the_pool_is_full(settings):
    spares = Portal.objects.filter(is_spare=True).count()
    settings.PORTAL_SPARE_POOL_SIZE = spares

    out, err = _run("refill_spare_schemas")

    assert out.strip() == f"Created 0 spare schema(s); the pool now holds {spares}."
    assert err == ""


def test_refill_spare_schemas_refuses_a_negative_size():
    with pytest.raises(CommandError, match="must not be negative"):
        _run("refill_spare_schemas", "--size", "-1")


def test_refill_spare_schemas_replaces_a_claimed_spare(admin):
    spares = Portal.objects.filter(is_spare=True).count()
    make_portal(admin, name="Claims a spare")

    out, _ = _run("refill_spare_schemas", "--size", str(spares))

    assert out.strip() == f"Created 1 spare schema(s); the pool now holds {spares}."
