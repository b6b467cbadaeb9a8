"""The one vocabulary of the suite: personas, their clients, portals, and the helpers every suite shares.

Personas (each a fixture):
- `owner`: an admin of `organization`, the production organization that owns `portal`.
- `member`: a non-admin member of `organization`.
- `outsider`: an admin of `outsider_organization`, another production organization (it owns `outsider_portal`).
- `portal_user`: an active member of `portal`, logged in on its host with a portal-scoped token.
- `operator`: a superuser (the admin site's operator).

API tests use bearer tokens through `APIClient` with real hosts (`owner_api` on the main host,
`owner_on_portal` on the portal's host); admin tests use a logged-in Django `Client` (`owner_web`,
`web_client(user)`).

Schemas are expensive: `session_org`, `spare_pool` and `test_portal` are committed once per session;
every portal made inside a test (`portal`, `outsider_portal`, `make_portal`) claims a spare inside the
test's transaction, and the rollback gives it back.
"""

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core import mail
from django.core.cache import caches
from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import Organization, OrgMembership, User
from accounts.selectors import admin_organizations
from customer_portal.models import PortalUser
from customer_portal.services import InviteEntry, portal_users_invite
from portals.models import Portal
from portals.provisioning import spare_pool_refill
from portals.routing import routing_forget_everything
from portals.services import portal_create
from tests.dns_server import DnsZone, start_dns_server
from tests.factories import DEFAULT_PASSWORD, OrganizationFactory, OrgMembershipFactory, UserFactory
from tests.jobs import run_jobs
from tests.smtp import SmtpServer
from tests.webhook_receiver import WebhookReceiver

MAIN_HOST = "localhost"
TEST_PORTAL_SLUG = "test"
TEST_PORTAL_HOST = "test.localhost"
SESSION_ADMIN_EMAIL = "session-admin@example.com"

OWNER_EMAIL = "owner@acme.test"
MEMBER_EMAIL = "member@acme.test"
OUTSIDER_EMAIL = "outsider@globex.test"
OPERATOR_EMAIL = "operator@operator.test"
OPERATOR_PASSWORD = "operator password 1"
PORTAL_USER_EMAIL = "pat@customer.test"
PORTAL_NAME, PORTAL_SLUG, PORTAL_HOST = "Acme", "acme", "acme.localhost"

# The secret part of an e-mailed invitation link, on whichever host and port it names.
INVITE_LINK = re.compile(r"https?://(?P<host>[^/\s]+)/invite/(?P<token>\S+)")


# Helpers -------------------------------------------------------------------------------------------


def make_portal(admin: User, **fields: Any) -> Portal:
    """A portal of the one production organization `admin` administers, created by `admin` through the service."""
    return portal_create(organization=admin_organizations(user=admin).get(), created_by=admin, **fields)


def token_client(access: str, host: str) -> APIClient:
    """A client on `host` that sends the access token `access`."""
    client = APIClient(HTTP_HOST=host)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def bearer_client(user: User, host: str = MAIN_HOST) -> APIClient:
    """A client that sends a real (account-level) access token for `user`, as an API consumer would."""
    return token_client(str(RefreshToken.for_user(user).access_token), host)


def web_client(user: User | None = None) -> Client:
    """A browser-like client on the main host, logged in as `user` when given."""
    client = Client(HTTP_HOST=MAIN_HOST)
    if user is not None:
        client.force_login(user)
    return client


def portal_login(host: str, email: str, password: str = DEFAULT_PASSWORD) -> tuple[int, dict[str, Any]]:
    """`POST /v1/auth/token` on a portal's host: a portal login, which opens a portal session."""
    response = APIClient(HTTP_HOST=host).post("/v1/auth/token", {"email": email, "password": password}, format="json")
    return response.status_code, response.json()


def invite(portal: Portal, *emails: str, invited_by: User | None = None, send_email: bool = False) -> None:
    """Invite `emails` to `portal` through the service (accounts that exist are linked at once)."""
    with tenant_context(portal):
        portal_users_invite(
            portal=portal,
            entries=[InviteEntry(email=email) for email in emails],
            invited_by=invited_by,
            send_email=send_email,
        )


def members(portal: Portal) -> dict[str, PortalUser]:
    """The portal's users by e-mail."""
    with tenant_context(portal):
        return {member.email: member for member in PortalUser.objects.all()}


def invite_token(message: mail.EmailMessage) -> str:
    """The token of the invitation link in an e-mail."""
    link = INVITE_LINK.search(message.body)
    assert link is not None, message.body
    return link.group("token")


def schema_exists(schema_name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema_name])
        return cursor.fetchone() is not None


class TtyStringIO(StringIO):
    """What an operator types at (or sees on) a terminal."""

    def isatty(self) -> bool:
        return True


def run_command(name: str, *args: str, **options: Any) -> tuple[str, str]:
    """A management command's stdout and stderr."""
    out, err = StringIO(), StringIO()
    call_command(name, *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


class FailingEmailBackend(BaseEmailBackend):
    """The mail server is down: every send fails as a refused SMTP connection does."""

    def send_messages(self, email_messages: Sequence[mail.EmailMessage]) -> int:
        raise ConnectionRefusedError(111, "Connection refused (FailingEmailBackend: the mail server is down)")


@pytest.fixture
def mail_down(settings: Any) -> None:
    settings.EMAIL_BACKEND = "tests.conftest.FailingEmailBackend"


# Session-wide rows and schemas ---------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _clear_caches() -> Iterator[None]:
    caches["default"].clear()  # throttle counters must not leak between tests
    routing_forget_everything()  # nor cached routes, shared or in-process
    yield
    connection.set_schema_to_public()


@pytest.fixture
def smtp(settings: Any) -> Iterator[SmtpServer]:
    """A real SMTP server on loopback, and Django's mail sent to it."""
    with SmtpServer() as server:
        for name, value in server.django_settings().items():
            setattr(settings, name, value)
        yield server


@pytest.fixture
def receiver(settings: Any) -> Iterator[WebhookReceiver]:
    """A real HTTP server on loopback that records the webhooks it gets (tests/webhook_receiver.py), and
    webhooks allowed to plain http on loopback (WEBHOOK_ALLOW_HTTP, WEBHOOK_ALLOW_PRIVATE_NETWORKS)."""
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    settings.WEBHOOK_TIMEOUT = 5.0
    with WebhookReceiver() as server:
        yield server


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
        # Jobs an earlier session committed and left (the database is reused) must not run inside tests.
        run_jobs(advance=timedelta(days=365))


@pytest.fixture(scope="session")
def test_portal(session_org: Organization, spare_pool: None, django_db_blocker: pytest.FixtureRequest) -> Portal:
    """One portal (schema and domain) committed for the whole session; each test rolls its rows back."""
    with django_db_blocker.unblock():
        portal = Portal.objects.filter(slug=TEST_PORTAL_SLUG).first()
        if portal is None:
            admin = User.objects.get(email=SESSION_ADMIN_EMAIL)
            portal = make_portal(admin, name="Test portal", slug=TEST_PORTAL_SLUG)
            run_jobs()  # the refill that create queued: the pool is full again for the tests
    return portal


@pytest.fixture
def session_admin(session_org: Organization, db: None) -> User:
    return User.objects.get(email=SESSION_ADMIN_EMAIL)


# Personas ------------------------------------------------------------------------------------------


@pytest.fixture
def organization(db: None) -> Organization:
    """The production organization that owns `portal`."""
    return OrganizationFactory(name="Acme Corp", slug="acme-corp")


def _person(organization: Organization, role: str, email: str) -> User:
    return OrgMembershipFactory(organization=organization, role=role, user__email=email).user


@pytest.fixture
def owner(organization: Organization) -> User:
    """An admin of `organization`."""
    return _person(organization, OrgMembership.Role.ADMIN, OWNER_EMAIL)


@pytest.fixture
def member(organization: Organization) -> User:
    """A member of `organization` who is not one of its admins."""
    return _person(organization, OrgMembership.Role.MEMBER, MEMBER_EMAIL)


@pytest.fixture
def outsider_organization(db: None) -> Organization:
    """Another production organization."""
    return OrganizationFactory(name="Globex", slug="globex")


@pytest.fixture
def outsider(outsider_organization: Organization) -> User:
    """An admin of another production organization."""
    return _person(outsider_organization, OrgMembership.Role.ADMIN, OUTSIDER_EMAIL)


@pytest.fixture
def operator(db: None) -> User:
    """A superuser."""
    return User.objects.create_superuser(email=OPERATOR_EMAIL, password=OPERATOR_PASSWORD)


@pytest.fixture
def make_org_user(db: None) -> Callable[..., User]:
    """An admin (or another role) of a new organization (production unless told otherwise)."""

    def make(*, role: str = OrgMembership.Role.ADMIN, environment: str = Organization.Environment.PRODUCTION) -> User:
        return OrgMembershipFactory(role=role, organization=OrganizationFactory(environment=environment)).user

    return make


# Portals -------------------------------------------------------------------------------------------


@pytest.fixture
def portal(owner: User, spare_pool: None) -> Portal:
    """The portal under test: `organization`'s, created by `owner` (inside the test's transaction)."""
    return make_portal(owner, name=PORTAL_NAME, slug=PORTAL_SLUG)


@pytest.fixture
def portal_host(portal: Portal) -> str:
    assert portal.default_domain == PORTAL_HOST
    return PORTAL_HOST


@pytest.fixture
def outsider_portal(outsider: User, spare_pool: None) -> Portal:
    """A portal of `outsider_organization`, with a custom domain."""
    return make_portal(outsider, name="Globex portal", slug="globex-portal", custom_domain="portal.globex.test")


# Clients -------------------------------------------------------------------------------------------


@pytest.fixture
def api_client() -> APIClient:
    """An anonymous client on the main host (the public schema)."""
    return APIClient(HTTP_HOST=MAIN_HOST)


@pytest.fixture
def portal_client(test_portal: Portal, db: None) -> APIClient:
    """An anonymous client on the session's test portal's host (its schema)."""
    return APIClient(HTTP_HOST=TEST_PORTAL_HOST)


@pytest.fixture
def owner_api(owner: User, spare_pool: None) -> APIClient:
    """The owner's account-level token, on the main host."""
    return bearer_client(owner)


@pytest.fixture
def owner_on_portal(owner: User, portal_host: str) -> APIClient:
    """The owner's account-level token, used on the portal's own host."""
    return bearer_client(owner, host=portal_host)


@pytest.fixture
def owner_web(owner: User) -> Client:
    """The owner, logged in to the admin site."""
    return web_client(owner)


@dataclass
class PortalUserLogin:
    account: User
    member: PortalUser
    client: APIClient  # on the portal's host, with the portal-scoped access token
    access: str
    refresh: str


@pytest.fixture
def make_portal_user(portal: Portal, portal_host: str) -> Callable[..., PortalUserLogin]:
    """An account linked to `portal` (an active member), logged in on its host."""

    def make(email: str = PORTAL_USER_EMAIL, role: str = PortalUser.Role.MEMBER) -> PortalUserLogin:
        account = UserFactory(email=email)
        with tenant_context(portal):
            portal_users_invite(
                portal=portal, entries=[InviteEntry(email=email, role=role)], invited_by=None, send_email=False
            )
            portal_member = PortalUser.objects.get(global_user_id=account.id)
        status, tokens = portal_login(portal_host, email)
        assert status == 200, tokens
        client = token_client(tokens["access"], portal_host)
        return PortalUserLogin(account, portal_member, client, tokens["access"], tokens["refresh"])

    return make


@pytest.fixture
def portal_user(make_portal_user: Callable[..., PortalUserLogin]) -> PortalUserLogin:
    """An active member of `portal`, logged in on its host with a portal-scoped token."""
    return make_portal_user()


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
