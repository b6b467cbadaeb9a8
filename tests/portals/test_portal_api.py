"""/v1/portal over HTTP: who may call it, portal lifecycle, validation."""

import uuid

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from accounts.models import Organization, OrgMembership
from customer_portal.models import PortalUser
from portals.models import Domain, Portal
from tests.conftest import bearer_client, invite, make_portal, schema_exists, verified_custom_domain
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db


def _create(client, **body):
    return client.post("/v1/portal", {"name": "Acme", **body}, format="json")


# Who may call it ---------------------------------------------------------------


def test_no_token_is_401_everywhere(api_client):
    some_id = uuid.uuid4()
    for method, path in [
        ("get", "/v1/portal"),
        ("post", "/v1/portal"),
        ("get", f"/v1/portal/{some_id}"),
        ("patch", f"/v1/portal/{some_id}"),
        ("delete", f"/v1/portal/{some_id}"),
        ("get", f"/v1/portal/{some_id}/users"),
        ("post", f"/v1/portal/{some_id}/users"),
        ("delete", f"/v1/portal/{some_id}/users/{uuid.uuid4()}"),
    ]:
        response = getattr(api_client, method)(path, {}, format="json")
        assert response.status_code == 401, (method, path)
        assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("who", ["member", "member-of-another-org", "sandbox-admin", "outsider"])
def test_everyone_but_the_owner_gets_404_for_a_portal_never_403(
    owner_api, member, outsider, make_org_user, request, who
):
    portal_id = _create(owner_api).json()["id"]
    caller = {
        "member": lambda: member,
        "member-of-another-org": lambda: make_org_user(role=OrgMembership.Role.MEMBER),
        "sandbox-admin": lambda: make_org_user(environment=Organization.Environment.SANDBOX),
        "outsider": lambda: outsider,
    }[who]()
    client = bearer_client(caller)

    for method, path in [
        ("get", f"/v1/portal/{portal_id}"),
        ("patch", f"/v1/portal/{portal_id}"),
        ("put", f"/v1/portal/{portal_id}"),
        ("delete", f"/v1/portal/{portal_id}"),
        ("get", f"/v1/portal/{portal_id}/users"),
        ("post", f"/v1/portal/{portal_id}/users"),
        ("delete", f"/v1/portal/{portal_id}/users/{uuid.uuid4()}"),
    ]:
        response = getattr(client, method)(path, {"name": "x", "users": [{"email": "a@b.co"}]}, format="json")
        assert response.status_code == 404, (method, path)
        assert response.json() == {"detail": "Not found."}
    assert Portal.objects.filter(id=portal_id).exists()


@pytest.mark.parametrize("who", ["member", "sandbox-admin"])
def test_non_production_admins_cannot_list_or_create(member, make_org_user, spare_pool, who):
    caller = member if who == "member" else make_org_user(environment=Organization.Environment.SANDBOX)
    client = bearer_client(caller)

    assert client.get("/v1/portal").status_code == 403
    assert _create(client).status_code == 403
    assert not Portal.objects.filter(name="Acme").exists()


def test_a_malformed_portal_id_is_404(owner_api):
    assert owner_api.get("/v1/portal/not-a-uuid").status_code == 404
    assert owner_api.get("/v1/portal/not-a-uuid/users").status_code == 404
    portal_id = _create(owner_api).json()["id"]
    assert owner_api.delete(f"/v1/portal/{portal_id}/users/not-a-uuid").status_code == 404


# Create ---------------------------------------------------------------------------


def test_create_returns_the_portal_with_its_schema_and_domain(owner_api, owner):
    response = _create(owner_api, custom_domain="Portal.Acme-Corp.com")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "id", "organization_id", "name", "slug", "domain", "custom_domain", "custom_domain_status",
        "custom_domain_verification", "user_count", "created_at", "updated_at",
    }  # fmt: skip
    assert body["name"] == "Acme"
    assert body["slug"] == "acme"
    assert body["domain"] == "acme.localhost"
    assert body["custom_domain"] == "portal.acme-corp.com"
    assert body["custom_domain_status"] == "pending"
    assert body["user_count"] == 0
    assert body["organization_id"] == str(owner.organizations.get().id)
    portal = Portal.objects.get(id=body["id"])
    assert portal.created_by == owner
    assert portal.schema_name == f"portal_{portal.id.hex}"  # from the id, never the (reusable) slug
    assert schema_exists(portal.schema_name)
    assert set(portal.domains.values_list("domain", "is_primary", "is_custom")) == {
        ("acme.localhost", True, False),
        ("portal.acme-corp.com", False, True),
    }


def test_the_new_portal_answers_on_its_hosts_at_once(owner_api, django_capture_on_commit_callbacks, dns_zone):
    with django_capture_on_commit_callbacks(execute=True):
        created = _create(owner_api, custom_domain="portal.acme.example").json()
        verified_custom_domain(owner_api, dns_zone, created)

    for host in ("acme.localhost", "portal.acme.example"):
        response = owner_api.get("/healthz", HTTP_HOST=host)
        assert response.status_code == 200, host
        assert response.wsgi_request.tenant.slug == "acme"


def test_slugs_are_derived_from_the_name_and_made_unique(owner_api):
    slugs = [_create(owner_api, name="Acme Corp!").json()["slug"] for _ in range(3)]

    assert slugs == ["acme-corp", "acme-corp-2", "acme-corp-3"]


@pytest.mark.parametrize(
    ("name", "slug"),
    [("A", "a-portal"), ("snake_case name", "snake-case-name"), ("Ωμέγα", "portal"), ("Admin", "admin-2")],
)
def test_derived_slugs_are_always_valid_dns_labels(owner_api, name, slug):
    response = _create(owner_api, name=name)

    assert response.status_code == 201
    assert response.json()["slug"] == slug


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("admin", "reserved"),
        ("www", "reserved"),
        ("Acme", "lower-case"),
        ("a", "lower-case"),
        ("-acme", "lower-case"),
        ("acme_corp", "lower-case"),
        ("a" * 64, "63"),
    ],
)
def test_bad_slugs_are_422(owner_api, slug, message):
    response = _create(owner_api, slug=slug)

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "slug"]
    assert message in error["msg"]


def test_a_taken_slug_is_422(owner_api):
    _create(owner_api, slug="acme")

    response = _create(owner_api, slug="acme")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "slug"]


@pytest.mark.parametrize(
    "domain",
    [
        "https://portal.acme.com",
        "portal.acme.com:8443",
        "portal.acme.com/path",
        "portal",
        "acme.localhost",
        "localhost",
        "127.0.0.1",
        "bad_host.example.com",
        "-bad.example.com",
        "a" * 64 + ".example.com",
    ],
)
def test_bad_custom_domains_are_422(owner_api, domain):
    response = _create(owner_api, custom_domain=domain)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "custom_domain"]
    assert not Portal.objects.filter(name="Acme").exists()


def test_a_custom_domain_is_unique_across_portals(owner_api, outsider):
    _create(owner_api, custom_domain="portal.acme.com")
    other = bearer_client(outsider)

    response = _create(other, custom_domain="PORTAL.acme.com")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "custom_domain"]


def test_organization_id_is_needed_only_with_several_orgs(owner_api, owner):
    first_org = owner.organizations.get()
    second_org = OrganizationFactory()
    OrgMembership.objects.create(user=owner, organization=second_org, role=OrgMembership.Role.ADMIN)

    missing = _create(owner_api)
    foreign = _create(owner_api, organization_id=str(OrganizationFactory().id))
    chosen = _create(owner_api, organization_id=str(second_org.id))

    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "organization_id"]
    assert foreign.status_code == 422
    assert chosen.status_code == 201
    assert chosen.json()["organization_id"] == str(second_org.id) != str(first_org.id)


def test_create_rejects_unknown_fields_and_blank_names(owner_api):
    assert _create(owner_api, schema_name="public").status_code == 422
    blank = owner_api.post("/v1/portal", {"name": "   "}, format="json")
    assert blank.status_code == 422
    assert blank.json()["detail"][0]["loc"] == ["body", "name"]


def test_hostile_names_are_stored_verbatim_and_returned_as_json(owner_api):
    name = "'; DROP SCHEMA public CASCADE; -- <script>alert(1)</script> $(rm -rf /)"

    response = _create(owner_api, name=name)

    assert response.status_code == 201
    assert response.json()["name"] == name
    assert response.json()["slug"] == "drop-schema-public-cascade-scriptalert1script-rm-rf"


# Read, update, delete ----------------------------------------------------------------


def test_list_and_retrieve_show_only_the_callers_portals_each_with_its_own_users(owner_api, outsider):
    first, second = _create(owner_api).json(), _create(owner_api, name="Second").json()
    theirs = _create(bearer_client(outsider), name="Theirs").json()
    invite(Portal.objects.get(id=first["id"]), "a@example.com", "b@example.com")  # different counts: a mix-up shows
    invite(Portal.objects.get(id=second["id"]), "c@example.com")
    invite(Portal.objects.get(id=theirs["id"]), "d@example.com", "e@example.com", "f@example.com")

    listed = owner_api.get("/v1/portal").json()
    retrieved = [owner_api.get(f"/v1/portal/{portal['id']}").json() for portal in (first, second)]

    assert [(portal["id"], portal["user_count"]) for portal in listed] == [(first["id"], 2), (second["id"], 1)]
    assert retrieved == listed
    assert retrieved[0] == {**first, "user_count": 2, "updated_at": retrieved[0]["updated_at"]}
    assert owner_api.get(f"/v1/portal/{theirs['id']}").status_code == 404


def test_retrieve_costs_the_same_queries_for_one_user_and_for_ten(owner_api, portal, django_assert_num_queries):
    info = "auth user, the portal (with the admin check), its user count, its domains"
    invite(portal, "first@example.com")
    owner_api.get(f"/v1/portal/{portal.id}")
    with django_assert_num_queries(4, info=info):
        assert owner_api.get(f"/v1/portal/{portal.id}").json()["user_count"] == 1
    invite(portal, *[f"more{index}@example.com" for index in range(9)])
    owner_api.get(f"/v1/portal/{portal.id}")  # back on public (the invite ran in the portal's schema)
    with django_assert_num_queries(4, info=info):
        assert owner_api.get(f"/v1/portal/{portal.id}").json()["user_count"] == 10


def test_list_costs_the_same_queries_for_one_portal_and_for_five(owner_api, django_assert_num_queries):
    info = "the account with the organizations it administers, portals, domains, user counts (one for every schema)"
    _create(owner_api)
    owner_api.get("/v1/portal")
    with django_assert_num_queries(4, info=info):
        assert len(owner_api.get("/v1/portal").json()) == 1
    for index in range(4):
        _create(owner_api, name=f"More {index}")
    owner_api.get("/v1/portal")
    with django_assert_num_queries(4, info=info):
        assert len(owner_api.get("/v1/portal").json()) == 5


@pytest.mark.parametrize("method", ["patch", "put"])
def test_update_renames_and_sets_the_custom_domain(owner_api, method):
    portal = _create(owner_api).json()

    response = getattr(owner_api, method)(
        f"/v1/portal/{portal['id']}", {"name": "Acme Two", "custom_domain": "Portal.Acme.com"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["name"] == "Acme Two"
    assert response.json()["custom_domain"] == "portal.acme.com"
    assert response.json()["slug"] == "acme"  # the slug and default domain never change


def test_update_with_null_removes_the_custom_domain_and_routing_follows(
    owner_api, django_capture_on_commit_callbacks, dns_zone
):
    with django_capture_on_commit_callbacks(execute=True):
        portal = verified_custom_domain(owner_api, dns_zone, _create(owner_api, custom_domain="old.acme.com").json())
    assert owner_api.get("/healthz", HTTP_HOST="old.acme.com").status_code == 200  # now cached

    with django_capture_on_commit_callbacks(execute=True):
        moved = owner_api.patch(f"/v1/portal/{portal['id']}", {"custom_domain": "new.acme.com"}, format="json")
        assert moved.json()["custom_domain"] == "new.acme.com"
        assert moved.json()["custom_domain_status"] == "pending"  # a new domain needs its own proof
        verified_custom_domain(owner_api, dns_zone, moved.json())
    assert owner_api.get("/healthz", HTTP_HOST="old.acme.com").status_code == 404
    assert owner_api.get("/healthz", HTTP_HOST="new.acme.com").status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        removed = owner_api.patch(f"/v1/portal/{portal['id']}", {"custom_domain": None}, format="json")
    assert removed.json()["custom_domain"] is None
    assert owner_api.get("/healthz", HTTP_HOST="new.acme.com").status_code == 404
    assert not Domain.objects.filter(is_custom=True, tenant_id=portal["id"]).exists()


def test_update_refuses_unknown_fields_and_the_slug(owner_api):
    portal = _create(owner_api).json()

    response = owner_api.patch(f"/v1/portal/{portal['id']}", {"slug": "other"}, format="json")

    assert response.status_code == 422
    assert response.json()["detail"] == [{"loc": ["body", "slug"], "msg": "Unknown field.", "type": "extra_forbidden"}]


def test_delete_drops_the_schema_domains_and_row(owner_api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        portal = _create(owner_api, custom_domain="portal.acme.com").json()
    assert owner_api.get("/healthz", HTTP_HOST="acme.localhost").status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        response = owner_api.delete(f"/v1/portal/{portal['id']}")

    assert response.status_code == 200
    assert response.json() == {}
    assert not schema_exists("portal_acme")
    assert not Portal.objects.filter(id=portal["id"]).exists()
    assert not Domain.objects.filter(domain__in=["acme.localhost", "portal.acme.com"]).exists()
    for host in ("acme.localhost", "portal.acme.com"):
        assert owner_api.get("/healthz", HTTP_HOST=host).status_code == 404
    assert owner_api.delete(f"/v1/portal/{portal['id']}").status_code == 404


def test_user_counts_are_read_in_batches_so_many_portals_never_exhaust_the_lock_table(
    owner, spare_pool, monkeypatch, django_assert_num_queries
):
    from customer_portal import selectors
    from portalsite import db

    monkeypatch.setattr(db, "SCHEMAS_PER_STATEMENT", 2)
    portals = [make_portal(owner, name=f"Batch {n}") for n in range(5)]
    for n, portal in enumerate(portals):  # portal n has n users, one more revoked (not counted)
        invite(portal, *[f"user{index}@example.com" for index in range(n)], "revoked@example.com")
        with tenant_context(portal):
            PortalUser.objects.filter(email="revoked@example.com").update(status=PortalUser.Status.REVOKED)
    connection.set_schema_to_public()
    Portal.objects.count()  # the connection is back on public before counting starts

    with django_assert_num_queries(3, info="5 portals in batches of 2"):
        counts = selectors.portal_user_counts(portals=portals)

    assert counts == {portal.id: n for n, portal in enumerate(portals)}
