from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import caches
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import Organization, OrgMembership, User
from accounts.selectors import admin_organizations
from portals.models import Portal
from portals.provisioning import spare_pool_refill
from portals.routing import routing_forget_everything
from portals.services import portal_create
from portalsite.db import database_url  # noqa: F401  # re-exported for the tests
from tests.dns_server import DnsZone, start_dns_server
from tests.factories import OrganizationFactory, OrgMembershipFactory, UserFactory

MAIN_HOST = "localhost"
TEST_PORTAL_SLUG = "test"
TEST_PORTAL_HOST = "test.localhost"
SESSION_ADMIN_EMAIL = "session-admin@example.com"


@pytest.fixture(autouse=True)
def _clear_caches() -> Iterator[None]:
    caches["default"].clear()  # throttle counters must not leak between tests
    routing_forget_everything()  # nor cached routes, shared or in-process
    yield
    connection.set_schema_to_public()


@pytest.fixture(scope="session")
def session_org(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> Organization:
    """A production organization and its admin, committed once for the whole session."""
    with django_db_blocker.unblock():  # get_or_create keeps --reuse-db working
        admin = User.objects.filter(email=SESSION_ADMIN_EMAIL).first() or UserFactory(email=SESSION_ADMIN_EMAIL)
        organization, _ = Organization.objects.get_or_create(slug="session-org", defaults={"name": "Session org"})
        OrgMembership.objects.get_or_create(user=admin, organization=organization, role=OrgMembership.Role.ADMIN)
    return organization


@pytest.fixture(scope="session")
def spare_pool(session_org: Organization, django_db_blocker: pytest.FixtureRequest) -> None:
    """Spare schemas for the session. A test that creates portals claims spares inside its own
    transaction, and its rollback puts them back, so the pool stays full across tests."""
    with django_db_blocker.unblock():
        spare_pool_refill(size=3)


@pytest.fixture(scope="session")
def test_portal(session_org: Organization, spare_pool: None, django_db_blocker: pytest.FixtureRequest) -> Portal:
    """One portal (schema and domain) committed for the whole session; each test rolls its rows back."""
    with django_db_blocker.unblock():
        portal = Portal.objects.filter(slug=TEST_PORTAL_SLUG).first()
        if portal is None:
            admin = User.objects.get(email=SESSION_ADMIN_EMAIL)
            portal = make_portal(admin, name="Test portal", slug=TEST_PORTAL_SLUG)
    return portal


def make_portal(admin: User, **fields: Any) -> Portal:
    """A portal of the one production organization `admin` administers, created by `admin` through the service."""
    return portal_create(organization=admin_organizations(user=admin).get(), created_by=admin, **fields)


def bearer_client(user: User, host: str = MAIN_HOST) -> APIClient:
    """A client that sends a real access token for `user`, as an API consumer would."""
    client = APIClient(HTTP_HOST=host)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def api_client() -> APIClient:
    """An anonymous client on the main host (the public schema)."""
    return APIClient(HTTP_HOST=MAIN_HOST)


@pytest.fixture
def portal_client(test_portal: Portal, db: None) -> APIClient:
    """An anonymous client on the test portal's host (its schema)."""
    return APIClient(HTTP_HOST=TEST_PORTAL_HOST)


@pytest.fixture
def session_admin(session_org: Organization, db: None) -> User:
    return User.objects.get(email=SESSION_ADMIN_EMAIL)


@pytest.fixture
def make_admin(db: None) -> Callable[..., User]:
    """An admin (or another role) of a new organization (production unless told otherwise)."""

    def make(*, role: str = OrgMembership.Role.ADMIN, environment: str = Organization.Environment.PRODUCTION) -> User:
        return OrgMembershipFactory(role=role, organization=OrganizationFactory(environment=environment)).user

    return make


@pytest.fixture
def admin(make_admin: Callable[..., User]) -> User:
    return make_admin()


@pytest.fixture
def admin_client(admin: User, spare_pool: None) -> APIClient:
    return bearer_client(admin)


@pytest.fixture(scope="session")
def _dns_server() -> Iterator[tuple[DnsZone, int]]:
    server, zone, port = start_dns_server()
    yield zone, port
    server.stop()


@pytest.fixture
def dns_zone(_dns_server: tuple[DnsZone, int], settings: Any) -> Iterator[DnsZone]:
    """The loopback DNS server, empty, and our resolver pointed at it (DNS_RESOLVERS)."""
    zone, port = _dns_server
    zone.clear()
    settings.DNS_RESOLVERS = [f"127.0.0.1:{port}"]
    settings.DNS_TIMEOUT = 0.5
    yield zone
    zone.clear()


def publish_challenge(zone: DnsZone, portal_response: dict[str, Any]) -> None:
    """Publish the TXT record a PortalResponse asks for, as the domain's owner would."""
    record = portal_response["custom_domain_verification"]
    zone.txt[record["name"]] = [record["value"]]


def verified_custom_domain(client: APIClient, zone: DnsZone, portal_response: dict[str, Any]) -> dict[str, Any]:
    """Publish the portal's TXT record and verify it through the API; returns the verified PortalResponse."""
    publish_challenge(zone, portal_response)
    response = client.post(f"/v1/portal/{portal_response['id']}/custom-domain/verify")
    assert response.status_code == 200, response.content
    assert response.json()["custom_domain_status"] == "verified", response.json()
    return response.json()
