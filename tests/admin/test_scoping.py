"""Scoping: an org admin sees and reaches only its own organizations' objects; other orgs' are a 404;
superusers see every real portal (never a spare or the public tenant)."""

import re

import pytest
from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context

from accounts.models import Organization, OrgMembership, User
from customer_portal.models import Feature, PortalSettings, PortalUser
from portals.models import Domain, Portal
from tests.conftest import OUTSIDER_EMAIL, OWNER_EMAIL, invite, make_portal, web_client

PORTAL_PAGES = ["users", "invite", "invitations", "features", "settings", "sessions"]


def _object_urls(portal: Portal) -> list[str]:
    base = f"/admin/portals/portal/{portal.pk}"
    return [f"{base}/change/", f"{base}/delete/", f"{base}/history/", *[f"{base}/{page}/" for page in PORTAL_PAGES]]


@pytest.fixture
def both(portal: Portal, outsider_portal: Portal, outsider: User) -> tuple[Portal, Portal]:
    invite(portal, "own-user@example.com")
    invite(outsider_portal, "foreign-user@example.com")
    return portal, outsider_portal


def test_an_admin_lists_only_its_own_portals_domains_orgs_and_members(
    owner_web: Client, both: tuple[Portal, Portal], organization: Organization, outsider_organization: Organization
) -> None:
    portals = owner_web.get("/admin/portals/portal/").content.decode()
    domains = owner_web.get("/admin/portals/domain/").content.decode()
    organizations = owner_web.get("/admin/accounts/organization/").content.decode()
    members = owner_web.get("/admin/accounts/orgmembership/").content.decode()

    assert "acme.localhost" in portals and "Globex portal" not in portals and "globex" not in portals
    assert "acme.localhost" in domains and "globex" not in domains
    assert "Acme Corp" in organizations and "Globex" not in organizations
    assert OWNER_EMAIL in members and OUTSIDER_EMAIL not in members
    # Filter choices come from the scoped rows only: another org's name never shows up there either.
    assert "Globex" not in owner_web.get("/admin/portals/portal/?q=globex").content.decode()


def _user_count_cells(page: str) -> dict[str, str]:
    """The changelist's user count per portal, by the portal's change URL."""
    rows = re.findall(r"<tr>.*?</tr>", page, re.S)
    cells = {}
    for row in rows:
        link = re.search(r'href="(/admin/portals/portal/[^"]+/change/)"', row)
        count = re.search(r'<td class="field-user_count">(\d+)</td>', row)
        if link and count:
            cells[link.group(1)] = count.group(1)
    return cells


def test_a_portal_list_shows_user_counts_from_each_schema(
    owner_web: Client, owner: User, both: tuple[Portal, Portal]
) -> None:
    portal, _ = both
    invite(portal, "second@example.com")
    second = make_portal(owner, name="Acme second", slug="acme-second")  # a different count: a mix-up shows
    invite(second, "third@example.com", "fourth@example.com", "fifth@example.com")

    response = owner_web.get("/admin/portals/portal/")

    assert response.status_code == 200
    assert _user_count_cells(response.content.decode()) == {
        f"/admin/portals/portal/{portal.pk}/change/": "2",
        f"/admin/portals/portal/{second.pk}/change/": "3",
    }


def test_a_foreign_admin_gets_404_on_every_url_of_the_portal(
    both: tuple[Portal, Portal], outsider: User, organization: Organization, owner: User
) -> None:
    portal, _ = both
    client = web_client(outsider)
    membership = OrgMembership.objects.get(user=owner)
    domain = Domain.objects.get(tenant=portal)

    urls = [
        *_object_urls(portal),
        f"/admin/portals/domain/{domain.pk}/change/",
        f"/admin/accounts/organization/{organization.pk}/change/",
        f"/admin/accounts/orgmembership/{membership.pk}/change/",
    ]

    assert {url: client.get(url).status_code for url in urls} == dict.fromkeys(urls, 404)
    assert "not yours to see" in client.get(urls[0]).content.decode()  # an admin page, not the API's JSON
    assert client.get("/admin/portals/portal/not-a-uuid/users/").status_code == 404


def test_a_foreign_admins_posts_cannot_touch_the_portal(
    both: tuple[Portal, Portal], outsider: User, owner: User
) -> None:
    portal, _ = both
    client = web_client(outsider)
    with tenant_context(portal):
        member = PortalUser.objects.get(email="own-user@example.com")
        settings_before = PortalSettings.objects.values_list("primary_color", "session_timeout_minutes").get()
    assert settings_before != ("#000000", 5)
    base = f"/admin/portals/portal/{portal.pk}"

    responses = [
        client.post(f"{base}/users/", {"action": "revoke", "_selected_action": [member.id]}),
        client.post(f"{base}/users/", {"action": "remove", "confirm": "yes", "_selected_action": [member.id]}),
        client.post(f"{base}/invite/", {"emails": "intruder@example.com", "send_email": ""}),
        client.post(f"{base}/features/", {"feature": "chat", "enabled": "on"}),
        client.post(f"{base}/settings/", {"primary_color": "#000000", "session_timeout_minutes": 5}),
        client.post(f"{base}/change/", {"name": "Hijacked", "custom_domain": ""}),
        client.post(f"{base}/delete/", {"post": "yes"}),
    ]

    assert [response.status_code for response in responses] == [404] * len(responses)
    portal.refresh_from_db()
    assert portal.name == "Acme"
    with tenant_context(portal):
        assert PortalUser.objects.get(id=member.id).status == PortalUser.Status.INVITED
        assert not PortalUser.objects.filter(email="intruder@example.com").exists()
        assert not Feature.objects.get(key="chat").enabled
        assert PortalSettings.objects.values_list("primary_color", "session_timeout_minutes").get() == settings_before


def test_ids_from_another_portal_do_nothing_on_an_admins_own_pages(
    owner_web: Client, both: tuple[Portal, Portal]
) -> None:
    portal, outsider_portal = both
    with tenant_context(outsider_portal):
        foreign_member = PortalUser.objects.get(email="foreign-user@example.com")

    response = owner_web.post(
        f"/admin/portals/portal/{portal.pk}/users/", {"action": "revoke", "_selected_action": [foreign_member.id]}
    )

    assert response.status_code == 302
    with tenant_context(outsider_portal):
        assert PortalUser.objects.get(id=foreign_member.id).status == PortalUser.Status.INVITED


def test_an_admin_reaches_every_page_of_its_own_portal(owner_web: Client, both: tuple[Portal, Portal]) -> None:
    portal, _ = both

    assert {url: owner_web.get(url).status_code for url in _object_urls(portal)} == dict.fromkeys(
        _object_urls(portal), 200
    )


def test_a_sandbox_admin_logs_in_but_manages_no_portal(both: tuple[Portal, Portal]) -> None:
    sandbox = Organization.objects.create(name="Sandbox", slug="sandbox", environment="sandbox")
    user = User.objects.create_user(email="sandy@example.com", password="x")
    OrgMembership.objects.create(user=user, organization=sandbox, role=OrgMembership.Role.ADMIN)
    client = web_client(user)

    assert "Sandbox" in client.get("/admin/accounts/organization/").content.decode()
    assert "acme.localhost" not in client.get("/admin/portals/portal/").content.decode()
    assert client.get("/admin/portals/portal/add/").status_code == 403


def test_a_member_reaches_nothing(both: tuple[Portal, Portal], member: User) -> None:
    client = web_client(member)
    portal, _ = both

    for url in ["/admin/portals/portal/", *_object_urls(portal)]:
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith("/admin/login/"), url


def test_a_superuser_sees_every_real_portal_but_no_spare_or_public_tenant(
    both: tuple[Portal, Portal], operator: User
) -> None:
    client = web_client(operator)
    spare = Portal.objects.filter(is_spare=True).first()
    public = Portal.objects.get(schema_name="public")

    portals = client.get("/admin/portals/portal/").content.decode()
    domains = client.get("/admin/portals/domain/").content.decode()

    assert "acme.localhost" in portals and "globex-portal.localhost" in portals
    assert spare is not None and spare.slug not in portals
    assert ">localhost<" not in domains and "portal.globex.test" in domains
    for portal in both:
        assert {url: client.get(url).status_code for url in _object_urls(portal)} == dict.fromkeys(
            _object_urls(portal), 200
        )
    assert client.get(f"/admin/portals/portal/{spare.pk}/change/").status_code == 404
    assert client.get(f"/admin/portals/portal/{public.pk}/users/").status_code == 404
    organizations = client.get("/admin/accounts/organization/").content.decode()
    assert "Acme Corp" in organizations and "Globex" in organizations


def test_the_connection_is_back_on_public_after_each_portal_page(
    owner_web: Client, both: tuple[Portal, Portal]
) -> None:
    portal, _ = both
    for page in PORTAL_PAGES:
        owner_web.get(f"/admin/portals/portal/{portal.pk}/{page}/")
        assert connection.schema_name == "public", page
    # Also after a refused write (the service raised inside the portal's schema).
    owner_web.post(f"/admin/portals/portal/{portal.pk}/features/", {"feature": "no-such-feature", "enabled": "on"})
    assert connection.schema_name == "public"


def test_each_users_page_shows_its_own_portals_people_only(
    owner_web: Client, both: tuple[Portal, Portal], operator: User
) -> None:
    portal, outsider_portal = both
    client = web_client(operator)

    own = client.get(f"/admin/portals/portal/{portal.pk}/users/").content.decode()
    foreign = client.get(f"/admin/portals/portal/{outsider_portal.pk}/users/").content.decode()

    assert "own-user@example.com" in own and "foreign-user@example.com" not in own
    assert "foreign-user@example.com" in foreign and "own-user@example.com" not in foreign


@pytest.mark.parametrize(
    ("app_label", "model_name", "field_name", "own"),
    [("portals", "domain", "tenant", "Acme"), ("accounts", "orgmembership", "organization", "Acme Corp")],
)
def test_autocomplete_answers_from_the_scoped_querysets_only(
    owner_web: Client, both: tuple[Portal, Portal], app_label: str, model_name: str, field_name: str, own: str
) -> None:
    query = {"app_label": app_label, "model_name": model_name, "field_name": field_name}

    foreign = owner_web.get("/admin/autocomplete/", {**query, "term": "globex"})
    mine = owner_web.get("/admin/autocomplete/", {**query, "term": "acme"})

    assert foreign.status_code == mine.status_code == 200
    assert foreign.json()["results"] == []
    assert [result["text"] for result in mine.json()["results"]] == [own]
