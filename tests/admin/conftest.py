from collections.abc import Callable

import pytest
from django.test import Client
from django_tenants.utils import tenant_context

from accounts.models import Organization, OrgMembership, User
from customer_portal.services import InviteEntry, portal_users_invite
from portals.models import Portal
from tests.conftest import MAIN_HOST, make_portal
from tests.factories import OrganizationFactory, OrgMembershipFactory, UserFactory


def web_client(user: User | None = None) -> Client:
    """A browser-like client on the main host, logged in as `user` when given."""
    client = Client(HTTP_HOST=MAIN_HOST)
    if user is not None:
        client.force_login(user)
    return client


def invite(portal: Portal, *emails: str) -> None:
    with tenant_context(portal):
        portal_users_invite(
            portal=portal, entries=[InviteEntry(email=email) for email in emails], invited_by=None, send_email=False
        )


@pytest.fixture
def org(db: None) -> Organization:
    return OrganizationFactory(name="Acme Corp", slug="acme-corp")


@pytest.fixture
def org_admin(org: Organization) -> User:
    return OrgMembershipFactory(organization=org, role=OrgMembership.Role.ADMIN, user__email="ada@acme.test").user


@pytest.fixture
def org_member(org: Organization) -> User:
    return OrgMembershipFactory(organization=org, role=OrgMembership.Role.MEMBER, user__email="max@acme.test").user


@pytest.fixture
def foreign_org(db: None) -> Organization:
    return OrganizationFactory(name="Globex", slug="globex")


@pytest.fixture
def foreign_admin(foreign_org: Organization) -> User:
    return OrgMembershipFactory(
        organization=foreign_org, role=OrgMembership.Role.ADMIN, user__email="hank@globex.test"
    ).user


@pytest.fixture
def superuser(db: None) -> User:
    return User.objects.create_superuser(email="root@operator.test", password="operator password 1")


@pytest.fixture
def portal(org_admin: User, spare_pool: None) -> Portal:
    return make_portal(org_admin, name="Acme", slug="acme")


@pytest.fixture
def foreign_portal(foreign_admin: User, spare_pool: None) -> Portal:
    return make_portal(foreign_admin, name="Globex portal", slug="globex-portal", custom_domain="portal.globex.test")


@pytest.fixture
def portal_only_user(portal: Portal) -> User:
    """A global account whose only tie is an active membership of a portal."""
    account = UserFactory(email="pat@customer.test")
    invite(portal, account.email)
    return account


@pytest.fixture
def admin_web(org_admin: User) -> Client:
    return web_client(org_admin)


@pytest.fixture
def make_web() -> Callable[[User | None], Client]:
    return web_client
