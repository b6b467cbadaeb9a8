import pytest
from django.conf import settings
from django.db import connection
from django_tenants.utils import get_public_schema_name

from portals.models import Domain, Portal
from portals.services import public_tenant_ensure
from tests.conftest import MAIN_HOST, TEST_PORTAL_HOST

pytestmark = pytest.mark.django_db


def test_main_hosts_route_without_a_query(api_client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = api_client.get("/v1/no-such-thing")

    assert response.status_code == 404
    assert connection.schema_name == get_public_schema_name()


def test_a_portal_host_runs_in_the_portal_schema(portal_client, test_portal, django_assert_num_queries):
    portal_client.get("/healthz", HTTP_HOST=MAIN_HOST)  # the connection starts on public
    with django_assert_num_queries(1, info="the domain lookup (cold); the 404 runs no query in the portal"):
        response = portal_client.get("/v1/no-such-thing")

    assert response.status_code == 404
    assert response.wsgi_request.tenant == test_portal
    assert connection.schema_name == test_portal.schema_name


def test_a_warm_host_routes_without_a_query(portal_client, django_assert_num_queries):
    portal_client.get("/healthz")
    with django_assert_num_queries(1, info="healthz's own SELECT 1: no domain lookup, no SET"):
        assert portal_client.get("/healthz").status_code == 200


def test_switching_schemas_sets_the_search_path_once_per_switch(client, test_portal, django_assert_num_queries):
    from tests.conftest import MAIN_HOST, TEST_PORTAL_HOST

    client.get("/healthz", HTTP_HOST=TEST_PORTAL_HOST)
    with django_assert_num_queries(2, info="SET search_path to public, SELECT 1"):
        client.get("/healthz", HTTP_HOST=MAIN_HOST)
    with django_assert_num_queries(2, info="SET search_path to the portal, SELECT 1"):
        client.get("/healthz", HTTP_HOST=TEST_PORTAL_HOST)
    with connection.cursor() as cursor:
        cursor.execute("SHOW search_path")
        assert cursor.fetchone()[0] == f"{test_portal.schema_name}, public"


def test_the_main_host_serves_the_public_urlconf_and_portal_hosts_do_not(api_client, portal_client):
    assert api_client.get("/api/schema/").status_code == 200
    assert portal_client.get("/api/schema/").status_code == 404


def test_the_port_and_case_of_the_host_do_not_matter(client, test_portal):
    response = client.get("/healthz", HTTP_HOST=f"{TEST_PORTAL_HOST.upper()}:8000")

    assert response.status_code == 200
    assert response.wsgi_request.tenant == test_portal


def test_every_request_starts_on_public(client, test_portal):
    client.get("/healthz", HTTP_HOST=TEST_PORTAL_HOST)
    response = client.get("/healthz", HTTP_HOST=MAIN_HOST)

    assert response.wsgi_request.tenant.schema_name == get_public_schema_name()


def test_the_public_tenant_and_main_host_domains_exist_once():
    public_tenant_ensure()
    public_tenant_ensure()

    public = Portal.objects.get(schema_name=get_public_schema_name())
    assert public.organization is None
    assert sorted(Domain.objects.filter(tenant=public).values_list("domain", flat=True)) == sorted(settings.MAIN_HOSTS)


def test_a_route_cached_before_its_portal_was_deleted_elsewhere_is_a_404_and_forgotten(
    owner, owner_api, django_capture_on_commit_callbacks
):
    """Another instance deleted the portal: this one never heard (its on-commit forget did not run here)."""
    from django.core.cache import caches

    from portals.services import portal_delete
    from tests.conftest import make_portal

    with django_capture_on_commit_callbacks(execute=True):
        portal = make_portal(owner, name="Shared", slug="shared")
    assert owner_api.get("/v1/customer-portal/users", HTTP_HOST="shared.localhost").status_code == 200
    assert caches["routing"].get("host:shared.localhost")["schema_name"] == portal.schema_name  # cached

    portal_delete(portal=portal)  # its on-commit callbacks (forget the route) never run in this process
    response = owner_api.get("/v1/customer-portal/users", HTTP_HOST="shared.localhost")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    assert caches["routing"].get("host:shared.localhost") is None


def test_a_portal_named_by_id_is_cached_like_a_host(owner, owner_api, django_assert_num_queries):
    from tests.conftest import make_portal

    portal = make_portal(owner, name="By id", slug="by-id")
    path, header = "/v1/customer-portal/config", {"HTTP_X_PORTAL_ID": str(portal.id)}
    assert owner_api.get(path, **header).status_code == 200  # warms the route and the config
    with django_assert_num_queries(2, info="the account and its organizations, SET search_path; no portal lookup"):
        response = owner_api.get(path, **header)

    assert response.status_code == 200
    assert response.json()["portal"]["id"] == str(portal.id)


def test_a_portal_renamed_or_deleted_is_forgotten_by_id(owner, owner_api, django_capture_on_commit_callbacks):
    from django.core.cache import caches

    from portals.services import portal_delete, portal_update
    from tests.conftest import make_portal

    portal = make_portal(owner, name="Old name", slug="renamed")
    header = {"HTTP_X_PORTAL_ID": str(portal.id)}
    owner_api.get("/v1/customer-portal/config", **header)
    assert caches["routing"].get(f"portal:{portal.id}")["name"] == "Old name"

    with django_capture_on_commit_callbacks(execute=True):
        portal_update(portal=portal, name="New name")
    assert caches["routing"].get(f"portal:{portal.id}") is None
    owner_api.get("/v1/customer-portal/config", **header)
    assert caches["routing"].get(f"portal:{portal.id}")["name"] == "New name"

    with django_capture_on_commit_callbacks(execute=True):
        portal_delete(portal=portal)
    assert caches["routing"].get(f"portal:{portal.id}") is None
    assert owner_api.get("/v1/customer-portal/config", **header).status_code == 404


def test_a_portal_id_cached_before_its_portal_was_deleted_elsewhere_is_a_404_and_forgotten(owner, owner_api):
    """As for a host: another instance deleted it, and this one's cached route points at a dropped schema."""
    from django.core.cache import caches

    from portals.services import portal_delete
    from tests.conftest import make_portal

    portal = make_portal(owner, name="Gone", slug="gone")
    header = {"HTTP_X_PORTAL_ID": str(portal.id)}
    assert owner_api.get("/v1/customer-portal/users", **header).status_code == 200
    assert caches["routing"].get(f"portal:{portal.id}")["schema_name"] == portal.schema_name

    portal_delete(portal=portal)  # its on-commit callbacks (forget the route) never run in this process
    response = owner_api.get("/v1/customer-portal/users", **header)

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    assert caches["routing"].get(f"portal:{portal.id}") is None
