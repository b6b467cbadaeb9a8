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
