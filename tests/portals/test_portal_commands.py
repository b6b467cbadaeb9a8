"""The portals commands: create_portal, delete_portal and refill_spare_schemas."""

import uuid
from io import StringIO

import pytest
from django.core.management import CommandError

from accounts.models import Organization, OrgMembership
from portals.models import Domain, Portal
from tests.conftest import TtyStringIO, make_portal, run_command, schema_exists
from tests.factories import OrganizationFactory, OrgMembershipFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("spare_pool")]


# create_portal ---------------------------------------------------------------------


def test_create_portal_prints_the_id_of_a_portal_in_the_org(organization, owner):
    out, err = run_command("create_portal", "--org", organization.slug, "--name", "Acme support")

    portal = Portal.objects.get(id=uuid.UUID(out.strip()))
    assert (portal.organization, portal.name, portal.slug, portal.is_spare) == (
        organization,
        "Acme support",
        "acme-support",
        False,
    )
    assert schema_exists(portal.schema_name)
    assert err == "Created portal acme-support at acme-support.localhost for acme-corp\n"


def test_create_portal_takes_an_org_id_a_slug_and_a_custom_domain(organization, owner):

    out, _ = run_command(
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


def test_create_portal_puts_the_portal_in_the_named_org_when_its_admin_has_several(owner):
    other = OrgMembershipFactory(user=owner).organization

    out, _ = run_command("create_portal", "--org", other.slug, "--name", "Second")

    assert Portal.objects.get(id=uuid.UUID(out.strip())).organization == other


def test_create_portal_is_made_by_the_operator_not_by_one_of_the_org_admins(organization, owner):
    OrgMembershipFactory(organization=organization)  # a later admin

    out, _ = run_command("create_portal", "--org", organization.slug, "--name", "Acme support")

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
def test_create_portal_refuses_what_the_service_refuses_with_its_message(organization, owner, extra, message):
    portals_before = Portal.objects.count()

    with pytest.raises(CommandError) as excinfo:
        run_command("create_portal", "--org", organization.slug, "--name", "Acme", *extra)

    assert str(excinfo.value).startswith(message)
    assert "\n" not in str(excinfo.value)
    assert Portal.objects.count() == portals_before


def test_create_portal_refuses_a_taken_slug(organization, portal):
    with pytest.raises(CommandError, match=r"^The slug 'acme' is already taken\.$"):
        run_command("create_portal", "--org", organization.slug, "--name", "Again", "--slug", "acme")


@pytest.mark.parametrize("ref", ["no-such-org", "7d8f5b8e-1111-4222-8333-944455556666"])
def test_create_portal_refuses_an_unknown_org(ref):
    with pytest.raises(CommandError, match=rf"^No organization '{ref}'$"):
        run_command("create_portal", "--org", ref, "--name", "Acme")


def test_create_portal_refuses_a_sandbox_org(make_org_user):
    sandbox = OrgMembership.objects.get(user=make_org_user(environment=Organization.Environment.SANDBOX)).organization

    with pytest.raises(CommandError, match="is a sandbox"):
        run_command("create_portal", "--org", sandbox.slug, "--name", "Acme")

    assert not Portal.objects.filter(organization=sandbox).exists()


def test_create_portal_needs_no_org_admin_to_act_for(spare_pool):
    organization = OrganizationFactory()
    OrgMembershipFactory(organization=organization, role=OrgMembership.Role.MEMBER)

    out, _ = run_command("create_portal", "--org", organization.slug, "--name", "Acme")

    assert Portal.objects.get(id=uuid.UUID(out.strip())).organization == organization


# delete_portal ---------------------------------------------------------------------


def test_delete_portal_with_yes_drops_the_portal_and_its_schema(portal):
    out, _ = run_command("delete_portal", portal.slug, "--yes", stdin=StringIO())

    assert "Deleted portal acme" in out
    assert not Portal.objects.filter(id=portal.id).exists()
    assert not Domain.objects.filter(domain="acme.localhost").exists()
    assert not schema_exists(portal.schema_name)


def test_delete_portal_takes_an_id(portal):
    run_command("delete_portal", str(portal.id), "--yes")

    assert not Portal.objects.filter(id=portal.id).exists()


def test_delete_portal_asks_at_a_terminal_and_deletes_on_yes(portal):
    out, _ = run_command("delete_portal", portal.slug, stdin=TtyStringIO("y\n"))

    assert "Drop portal acme and all its data? [y/N]" in out
    assert not Portal.objects.filter(id=portal.id).exists()


@pytest.mark.parametrize("answer", ["n\n", "\n", ""])
def test_delete_portal_keeps_the_portal_unless_the_answer_is_yes(portal, answer):
    with pytest.raises(CommandError, match=r"^Aborted; nothing was deleted$"):
        run_command("delete_portal", portal.slug, stdin=TtyStringIO(answer))

    assert Portal.objects.filter(id=portal.id).exists()
    assert schema_exists(portal.schema_name)


def test_delete_portal_refuses_without_yes_when_stdin_is_not_a_terminal(portal):
    with pytest.raises(CommandError, match="nothing was deleted") as excinfo:
        run_command("delete_portal", portal.slug, stdin=StringIO("y\n"))  # piped: even a "y" is not a confirmation

    assert "\n" not in str(excinfo.value)
    assert Portal.objects.filter(id=portal.id).exists()


def test_delete_portal_reads_sys_stdin_by_default(portal, monkeypatch):
    monkeypatch.setattr("sys.stdin", StringIO("y\n"))

    with pytest.raises(CommandError, match="nothing was deleted"):
        run_command("delete_portal", portal.slug)

    monkeypatch.setattr("sys.stdin", TtyStringIO("yes\n"))
    run_command("delete_portal", portal.slug)
    assert not Portal.objects.filter(id=portal.id).exists()


@pytest.mark.parametrize("ref", ["no-such-portal", "7d8f5b8e-1111-4222-8333-944455556666"])
def test_delete_portal_refuses_an_unknown_portal(ref):
    with pytest.raises(CommandError, match=rf"^No portal '{ref}'$"):
        run_command("delete_portal", ref, "--yes")


def test_delete_portal_never_touches_a_spare_or_the_public_tenant():
    spare = Portal.objects.filter(is_spare=True).first()

    for ref in (spare.slug, str(spare.id), "public"):
        with pytest.raises(CommandError, match=r"^No portal"):
            run_command("delete_portal", ref, "--yes")

    assert schema_exists(spare.schema_name)


# refill_spare_schemas --------------------------------------------------------------


def test_refill_spare_schemas_tops_the_pool_up_to_size():
    spares = Portal.objects.filter(is_spare=True).count()

    out, _ = run_command("refill_spare_schemas", "--size", str(spares + 1))

    assert out.strip() == f"Created 1 spare schema(s); the pool now holds {spares + 1}."
    new = Portal.objects.filter(is_spare=True).order_by("-created_at").first()
    assert new.organization is None and schema_exists(new.schema_name)


def test_refill_spare_schemas_creates_nothing_when_the_pool_is_full(settings):
    spares = Portal.objects.filter(is_spare=True).count()
    settings.PORTAL_SPARE_POOL_SIZE = spares

    out, err = run_command("refill_spare_schemas")

    assert out.strip() == f"Created 0 spare schema(s); the pool now holds {spares}."
    assert err == ""


def test_refill_spare_schemas_refuses_a_negative_size():
    with pytest.raises(CommandError, match="must not be negative"):
        run_command("refill_spare_schemas", "--size", "-1")


def test_refill_spare_schemas_replaces_a_claimed_spare(owner):
    spares = Portal.objects.filter(is_spare=True).count()
    make_portal(owner, name="Claims a spare")

    out, _ = run_command("refill_spare_schemas", "--size", str(spares))

    assert out.strip() == f"Created 1 spare schema(s); the pool now holds {spares}."
