from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from accounts.models import User
from customer_portal.models import PortalUser
from customer_portal.services import InviteEntry, portal_users_invite
from portals.models import Portal
from tests.conftest import bearer_client, make_portal
from tests.factories import DEFAULT_PASSWORD, UserFactory


@dataclass
class PortalUserLogin:
    account: User
    member: PortalUser
    client: APIClient  # on the portal's host, with the portal-scoped access token
    access: str
    refresh: str


@pytest.fixture
def portal(admin: User, spare_pool: None) -> Portal:
    """A portal of `admin`'s organization (made inside the test's transaction)."""
    return make_portal(admin, name="Acme", slug="acme")


@pytest.fixture
def host(portal: Portal) -> str:
    return f"{portal.slug}.localhost"


@pytest.fixture
def admin_on_portal(admin: User, host: str) -> APIClient:
    """The org admin's account-level token, used on the portal's own host."""
    return bearer_client(admin, host=host)


def portal_login(host: str, email: str, password: str = DEFAULT_PASSWORD) -> tuple[int, dict]:
    response = APIClient(HTTP_HOST=host).post("/v1/auth/token", {"email": email, "password": password}, format="json")
    return response.status_code, response.json()


@pytest.fixture
def make_portal_user(portal: Portal, host: str) -> Callable[..., PortalUserLogin]:
    """An account linked to the portal (active member), logged in on its host."""

    def make(email: str = "member@example.com", role: str = PortalUser.Role.MEMBER) -> PortalUserLogin:
        account = UserFactory(email=email)
        with tenant_context(portal):
            portal_users_invite(
                portal=portal, entries=[InviteEntry(email=email, role=role)], invited_by=None, send_email=False
            )
            member = PortalUser.objects.get(global_user_id=account.id)
        status, tokens = portal_login(host, email)
        assert status == 200, tokens
        client = APIClient(HTTP_HOST=host)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
        return PortalUserLogin(account, member, client, tokens["access"], tokens["refresh"])

    return make


@pytest.fixture
def portal_user(make_portal_user: Callable[..., PortalUserLogin]) -> PortalUserLogin:
    return make_portal_user()
