"""Creating, changing and deleting portals in the admin: the API's services, and their audit events."""

from django.contrib.admin.models import LogEntry
from django.test import Client

from accounts.models import Organization, User
from events.models import AuditEvent
from portals.models import Domain, Portal
from tests.conftest import invite, schema_exists, web_client
from tests.dns_server import DnsZone
from tests.factories import OrganizationFactory, OrgMembershipFactory


def _log(portal_id: object) -> list[AuditEvent]:
    """The portal's trail as the admin recorded it (the admin writes no LogEntry of its own)."""
    assert not LogEntry.objects.filter(object_id=str(portal_id)).exists()
    return list(AuditEvent.objects.filter(portal_id=portal_id, via="admin").order_by("seq"))


def test_an_admin_creates_a_portal_with_a_custom_domain(
    owner_web: Client, organization: Organization, owner: User, spare_pool: None
) -> None:
    response = owner_web.post(
        "/admin/portals/portal/add/",
        {"organization": organization.pk, "name": "Acme Support", "slug": "", "custom_domain": "help.acme.test"},
    )

    assert response.status_code == 302, response.content.decode()
    portal = Portal.objects.get(name="Acme Support")
    assert (portal.slug, portal.organization_id, portal.is_spare) == ("acme-support", organization.pk, False)
    assert schema_exists(portal.schema_name)
    assert set(Domain.objects.filter(tenant=portal).values_list("domain", flat=True)) == {
        "acme-support.localhost",
        "help.acme.test",
    }
    [entry] = _log(portal.pk)
    assert (entry.action, entry.actor_id, entry.target_label) == ("portal.created", str(owner.pk), "acme-support")
    assert entry.changes == {
        "name": [None, "Acme Support"],
        "slug": [None, "acme-support"],
        "custom_domain": [None, "help.acme.test"],
    }


def test_the_add_form_offers_only_the_admins_production_organizations(
    owner_web: Client, organization: Organization, owner: User, outsider_organization: Organization, spare_pool: None
) -> None:
    sandbox = OrganizationFactory(name="Sandbox Co", environment="sandbox")
    OrgMembershipFactory(organization=sandbox, user=owner)

    page = owner_web.get("/admin/portals/portal/add/").content.decode()
    refused = owner_web.post(
        "/admin/portals/portal/add/", {"organization": outsider_organization.pk, "name": "Sneaky", "slug": "sneaky"}
    )

    assert "Acme Corp" in page and "Globex" not in page and "Sandbox Co" not in page
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    assert not Portal.objects.filter(slug="sneaky").exists()


def test_service_refusals_show_on_their_fields(owner_web: Client, organization: Organization, portal: Portal) -> None:
    taken = owner_web.post(
        "/admin/portals/portal/add/", {"organization": organization.pk, "name": "Again", "slug": "acme"}
    )
    reserved = owner_web.post(
        "/admin/portals/portal/add/", {"organization": organization.pk, "name": "Api", "slug": "api"}
    )
    domain = owner_web.post(
        "/admin/portals/portal/add/", {"organization": organization.pk, "name": "Dom", "custom_domain": "x.localhost"}
    )

    assert taken.context["adminform"].form.errors == {"slug": ["The slug 'acme' is already taken."]}
    assert reserved.context["adminform"].form.errors == {"slug": ["The slug 'api' is reserved."]}
    assert domain.context["adminform"].form.errors == {"custom_domain": ["Custom domains cannot be under localhost."]}
    assert Portal.objects.filter(organization=organization).count() == 1


def test_a_superuser_creates_a_portal_for_any_organization(
    operator: User, outsider_organization: Organization, outsider: User, spare_pool: None
) -> None:
    response = web_client(operator).post(
        "/admin/portals/portal/add/", {"organization": outsider_organization.pk, "name": "Operated", "slug": "operated"}
    )

    assert response.status_code == 302
    portal = Portal.objects.get(slug="operated")
    assert portal.organization_id == outsider_organization.pk
    assert portal.created_by == operator  # the operator, not the organization's admin
    assert (_log(portal.pk)[0].actor_type, _log(portal.pk)[0].actor_id) == ("operator", str(operator.pk))


def test_an_admin_renames_and_sets_then_clears_the_custom_domain(owner_web: Client, portal: Portal) -> None:
    url = f"/admin/portals/portal/{portal.pk}/change/"

    renamed = owner_web.post(url, {"name": "Acme Customers", "custom_domain": "customers.acme.test"})
    cleared = owner_web.post(url, {"name": "Acme Customers", "custom_domain": ""})

    assert renamed.status_code == cleared.status_code == 302
    portal.refresh_from_db()
    assert portal.name == "Acme Customers"
    assert not Domain.objects.filter(tenant=portal, is_custom=True).exists()
    assert [(entry.action, entry.changes) for entry in _log(portal.pk)] == [
        ("portal.updated", {"name": ["Acme", "Acme Customers"], "custom_domain": [None, "customers.acme.test"]}),
        ("portal.updated", {"custom_domain": ["customers.acme.test", None]}),
    ]


def test_a_domain_taken_by_another_portal_is_a_form_error(
    owner_web: Client, portal: Portal, outsider_portal: Portal
) -> None:
    response = owner_web.post(
        f"/admin/portals/portal/{portal.pk}/change/", {"name": "Acme", "custom_domain": "portal.globex.test"}
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "custom_domain": ["This domain is already used by another portal."]
    }
    assert not _log(portal.pk)


def test_the_change_page_shows_the_portal_and_links_its_pages(owner_web: Client, portal: Portal) -> None:
    invite(portal, "someone@example.com")

    page = owner_web.get(f"/admin/portals/portal/{portal.pk}/change/").content.decode()

    assert portal.schema_name in page and "acme.localhost" in page
    assert f"/admin/portals/portal/{portal.pk}/users/" in page
    assert f"/admin/portals/portal/{portal.pk}/sessions/" in page


def test_delete_asks_first_and_says_the_data_is_dropped_for_good(owner_web: Client, portal: Portal) -> None:
    page = owner_web.get(f"/admin/portals/portal/{portal.pk}/delete/").content.decode()

    assert f"drops its database schema <code>{portal.schema_name}</code>" in page
    assert "all of its data, for good" in page and "cannot be undone" in page
    assert Portal.objects.filter(pk=portal.pk).exists()


def test_delete_drops_the_schema_through_the_service_and_logs_it(
    owner_web: Client, portal: Portal, owner: User
) -> None:
    response = owner_web.post(f"/admin/portals/portal/{portal.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Portal.objects.filter(pk=portal.pk).exists()
    assert not Domain.objects.filter(tenant_id=portal.pk).exists()
    assert not schema_exists(portal.schema_name)
    [entry] = _log(portal.pk)
    assert (entry.action, entry.actor_id, entry.target_label) == ("portal.deleted", str(owner.pk), "acme")


def test_there_is_no_bulk_delete(owner_web: Client, portal: Portal) -> None:
    response = owner_web.post(
        "/admin/portals/portal/", {"action": "delete_selected", "_selected_action": [portal.pk], "post": "yes"}
    )

    assert "delete_selected" not in owner_web.get("/admin/portals/portal/").content.decode()
    assert response.status_code == 200  # the list again: the admin has no actions, so there is none to run
    assert "Are you sure" not in response.content.decode()
    assert Portal.objects.filter(pk=portal.pk).exists()


def test_organizations_and_members_are_read_only(owner_web: Client, organization: Organization, owner: User) -> None:
    page = owner_web.get(f"/admin/accounts/organization/{organization.pk}/change/")

    assert page.status_code == 200 and page.context["title"] == "View organization"
    assert owner_web.get("/admin/accounts/organization/add/").status_code == 403
    assert owner_web.post(f"/admin/accounts/organization/{organization.pk}/change/", {"name": "X"}).status_code == 403
    assert owner_web.get(f"/admin/accounts/organization/{organization.pk}/delete/").status_code == 403
    assert owner_web.get("/admin/accounts/orgmembership/add/").status_code == 403


def test_the_change_page_shows_the_txt_record_and_check_now_verifies_it(
    owner_web: Client, portal: Portal, owner: User, dns_zone: DnsZone
) -> None:
    owner_web.post(f"/admin/portals/portal/{portal.pk}/change/", {"name": "Acme", "custom_domain": "help.acme.test"})
    domain = Domain.objects.get(domain="help.acme.test")
    assert domain.verification_status == "pending"

    page = owner_web.get(f"/admin/portals/portal/{portal.pk}/change/").content.decode()
    assert "Custom domain help.acme.test: pending" in page
    assert "<code>_portalsite-challenge.help.acme.test</code>" in page
    assert f"<code>{domain.verification_token}</code>" in page
    verify_url = f"/admin/portals/portal/{portal.pk}/verify-domain/"
    assert f'formaction="{verify_url}"' in page and "Check now" in page

    not_yet = owner_web.post(verify_url, follow=True).content.decode()
    assert "The custom domain help.acme.test is still pending" in not_yet and "NXDOMAIN" in not_yet

    dns_zone.txt["_portalsite-challenge.help.acme.test"] = [domain.verification_token]
    response = owner_web.post(verify_url)

    assert response.status_code == 302
    assert response["Location"] == f"/admin/portals/portal/{portal.pk}/change/"
    assert Domain.objects.get(domain="help.acme.test").verification_status == "verified"
    assert "Custom domain help.acme.test: verified" in owner_web.get(response["Location"]).content.decode()
    assert [(entry.action, entry.target_label) for entry in _log(portal.pk)][-1] == (
        "portal.custom_domain.verified",
        "help.acme.test",
    )


def test_check_now_is_refused_for_another_organizations_portal_and_on_get(
    owner_web: Client, portal: Portal, outsider_portal: Portal, dns_zone: DnsZone
) -> None:
    assert owner_web.post(f"/admin/portals/portal/{outsider_portal.pk}/verify-domain/").status_code == 404
    assert owner_web.get(f"/admin/portals/portal/{portal.pk}/verify-domain/").status_code == 405
    assert not dns_zone.queries
