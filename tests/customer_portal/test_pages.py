"""Server-rendered pages on portal hosts: the home page and invitation acceptance (customer_portal.pages)."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from accounts.models import User
from customer_portal.features import FEATURE_CATALOG
from customer_portal.models import Invitation, PortalUser
from customer_portal.pages import EXISTING_ACCOUNT_NOTICE, PASSWORDS_DIFFER
from customer_portal.selectors import live_sessions
from customer_portal.services import INVALID_INVITATION
from portals.models import Portal
from tests.conftest import INVITE_LINK, MAIN_HOST, PORTAL_HOST, TEST_PORTAL_HOST
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.jobs import run_jobs

pytestmark = pytest.mark.django_db

HOST = PORTAL_HOST
EMAIL = "new.person@example.com"
NEW_PASSWORD = "plum orchard lantern 1987"
WRONG_PASSWORD = "not the password at all"

Invite = Callable[..., str]


@pytest.fixture
def page_client(portal_host: str) -> Client:
    return Client(HTTP_HOST=portal_host)


@pytest.fixture
def invite_by_mail(owner_api: APIClient, portal: Portal, django_capture_on_commit_callbacks: Any) -> Invite:
    """Invite someone through the API and return the token from the e-mailed link."""

    def make(email: str = EMAIL, name: str = "New Person") -> str:
        with django_capture_on_commit_callbacks(execute=True):
            response = owner_api.post(
                f"/v1/portal/{portal.id}/users", {"users": [{"email": email, "name": name}]}, format="json"
            )
        run_jobs()  # the e-mail jobs the change queued
        assert response.status_code == 201
        assert response.json()["results"][0]["status"] == "invited"
        link = INVITE_LINK.search(mail.outbox[-1].body)
        assert link is not None
        assert link.group("host") in (HOST, f"{HOST}:8000"), link.group("host")
        return link.group("token")

    return make


def _accept(client: Client, token: str, **fields: str) -> HttpResponse:
    return client.post(f"/invite/{token}", fields)


def _member(portal: Portal, email: str = EMAIL) -> PortalUser:
    with tenant_context(portal):
        return PortalUser.objects.get(email__iexact=email)


def _invitation(portal: Portal) -> Invitation:
    with tenant_context(portal):
        return Invitation.objects.get()


def _assert_invalid_page(response: HttpResponse, *hidden: str) -> None:
    assert response.status_code == 404
    content = response.content.decode()
    assert INVALID_INVITATION in content
    assert "<form" not in content.split('<main id="main">')[1]  # (the header's sign-out button aside)
    for text in hidden:
        assert text.lower() not in content.lower()


# Home page -----------------------------------------------------------------------------------------


def test_home_shows_the_branding_and_only_enabled_features(owner_on_portal: APIClient, page_client: Client) -> None:
    config = owner_on_portal.patch(
        "/v1/customer-portal/config",
        {
            "display_name": "Acme Customers",
            "logo_url": "https://cdn.example.com/acme.png",
            "primary_color": "#AA3300",
            "welcome_message": "Hello there.\nWe are glad you came.",
            "support_email": "help@acme.example",
        },
        format="json",
    )
    assert config.status_code == 200
    owner_on_portal.patch("/v1/customer-portal/features/chat/toggle", {"enabled": True}, format="json")
    owner_on_portal.patch("/v1/customer-portal/features/documents/toggle", {"enabled": False}, format="json")

    response = page_client.get("/")

    assert response.status_code == 200
    content = response.content.decode()
    assert "Acme Customers" in content
    assert 'src="https://cdn.example.com/acme.png"' in content
    assert "--accent: #aa3300;" in content
    assert "Hello there.<br>We are glad you came." in content
    assert "mailto:help@acme.example" in content
    for key in ("chat", "invoices", "support_tickets"):
        assert FEATURE_CATALOG[key].name in content
        assert FEATURE_CATALOG[key].description in content
    for key in ("documents", "knowledge_base"):
        assert FEATURE_CATALOG[key].description not in content
    assert "<script" not in content
    assert "https://" not in content.replace("https://cdn.example.com/acme.png", "")  # no external assets


def test_home_falls_back_to_the_portal_name_and_shows_nobody(page_client: Client, invite_by_mail: Invite) -> None:
    invite_by_mail()

    content = page_client.get("/").content.decode()

    assert "Acme" in content
    assert EMAIL not in content
    assert "New Person" not in content


def test_home_escapes_a_hostile_welcome_message(owner_on_portal: APIClient, page_client: Client) -> None:
    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    owner_on_portal.patch(
        "/v1/customer-portal/config", {"welcome_message": hostile, "display_name": '"><b>x</b>'}, format="json"
    )

    content = page_client.get("/").content.decode()

    assert "<script>alert(1)</script>" not in content
    assert "<img src=x" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content
    assert "<b>x</b>" not in content
    assert "&quot;&gt;&lt;b&gt;x&lt;/b&gt;" in content


def test_pages_send_a_strict_content_security_policy(page_client: Client) -> None:
    response = page_client.get("/")

    assert "default-src 'none'" in response["Content-Security-Policy"]
    assert "script-src" not in response["Content-Security-Policy"]


# Invitation form -----------------------------------------------------------------------------------


def test_a_valid_link_asks_a_new_person_for_name_and_password_twice(
    page_client: Client, invite_by_mail: Invite
) -> None:
    token = invite_by_mail()

    response = page_client.get(f"/invite/{token}")

    assert response.status_code == 200
    content = response.content.decode()
    assert EMAIL in content
    assert 'name="name"' in content
    assert 'value="New Person"' in content  # the name the admin gave
    assert 'name="password"' in content
    assert 'name="password_confirm"' in content
    assert 'name="csrfmiddlewaretoken"' in content
    assert EXISTING_ACCOUNT_NOTICE not in content
    assert "no-store" in response["Cache-Control"]
    assert response["Referrer-Policy"] == "same-origin"  # a secret link's URL never reaches another site


def test_a_valid_link_asks_an_account_holder_only_for_the_password(page_client: Client, invite_by_mail: Invite) -> None:
    token = invite_by_mail()
    UserFactory(email=EMAIL.upper())  # the account appeared after the invitation (e.g. through another portal)

    response = page_client.get(f"/invite/{token}")

    assert response.status_code == 200
    content = response.content.decode()
    assert EMAIL in content
    assert "You already have an account: enter its password" in content
    assert 'name="password"' in content
    assert 'name="name"' not in content
    assert 'name="password_confirm"' not in content


def test_accepting_creates_the_account_once(page_client: Client, invite_by_mail: Invite, portal: Portal) -> None:
    token = invite_by_mail()

    response = _accept(page_client, token, name="Nadia New", password=NEW_PASSWORD, password_confirm=NEW_PASSWORD)

    assert response.status_code == 200
    content = response.content.decode()
    assert "Welcome, Nadia New — your access is active" in content
    assert "Signed in as <strong>Nadia New</strong>" in content  # accepting signs the person in
    assert "What you can do here" in content  # the home page
    account = User.objects.get(email__iexact=EMAIL)
    assert account.check_password(NEW_PASSWORD)
    assert account.name == "Nadia New"
    member = _member(portal)
    assert member.status == PortalUser.Status.ACTIVE
    assert member.global_user_id == account.id
    assert member.joined_at is not None
    invitation = _invitation(portal)
    assert invitation.status == Invitation.Status.ACCEPTED
    assert invitation.accepted_at is not None
    with tenant_context(portal):
        [session] = live_sessions()  # the browser's: its cookie signs the next page in
    assert page_client.cookies["portal_session"]["httponly"]
    assert "Signed in as <strong>Nadia New</strong>" in page_client.get("/").content.decode()
    assert session.portal_user_id == member.id
    login = APIClient(HTTP_HOST=HOST).post("/v1/auth/token", {"email": EMAIL, "password": NEW_PASSWORD}, format="json")
    assert login.status_code == 200

    again = _accept(
        page_client, token, name="Mallory", password="another one 12345", password_confirm="another one 12345"
    )
    reopened = page_client.get(f"/invite/{token}")

    _assert_invalid_page(again, EMAIL)
    _assert_invalid_page(reopened, EMAIL)
    account.refresh_from_db()
    assert account.check_password(NEW_PASSWORD)
    assert account.name == "Nadia New"


def test_mismatched_passwords_are_422_and_change_nothing(
    page_client: Client, invite_by_mail: Invite, portal: Portal
) -> None:
    token = invite_by_mail()

    response = _accept(page_client, token, name="Nadia", password=NEW_PASSWORD, password_confirm=NEW_PASSWORD + "x")

    assert response.status_code == 422
    content = response.content.decode()
    assert PASSWORDS_DIFFER in content
    assert EMAIL in content
    assert 'aria-invalid="true"' in content
    assert NEW_PASSWORD not in content  # passwords are never echoed back
    assert not User.objects.filter(email__iexact=EMAIL).exists()
    assert _member(portal).status == PortalUser.Status.INVITED
    assert _invitation(portal).status == Invitation.Status.PENDING


def test_a_weak_password_is_422_next_to_the_field(page_client: Client, invite_by_mail: Invite, portal: Portal) -> None:
    token = invite_by_mail()

    response = _accept(page_client, token, name="Nadia", password="12345678", password_confirm="12345678")

    assert response.status_code == 422
    content = response.content.decode()
    assert 'id="id_password_error"' in content
    assert "This password is too common." in content
    assert not User.objects.filter(email__iexact=EMAIL).exists()
    assert _invitation(portal).status == Invitation.Status.PENDING
    assert page_client.get(f"/invite/{token}").status_code == 200  # the link still works


def test_an_account_holder_with_a_wrong_password_is_422_and_nothing_changes(
    page_client: Client, invite_by_mail: Invite, portal: Portal
) -> None:
    token = invite_by_mail()
    account = UserFactory(email=EMAIL)

    response = _accept(page_client, token, password=WRONG_PASSWORD)

    assert response.status_code == 422
    content = response.content.decode()
    assert "Incorrect password for the existing account with this e-mail." in content
    assert 'id="id_password_error"' in content
    member = _member(portal)
    assert member.status == PortalUser.Status.INVITED
    assert member.global_user_id is None
    assert _invitation(portal).status == Invitation.Status.PENDING
    account.refresh_from_db()
    assert account.check_password(DEFAULT_PASSWORD)


def test_an_account_holder_with_the_right_password_is_linked(
    page_client: Client, invite_by_mail: Invite, portal: Portal
) -> None:
    token = invite_by_mail()
    account = UserFactory(email=EMAIL, name="Known Person")

    response = _accept(page_client, token, password=DEFAULT_PASSWORD)

    assert response.status_code == 200
    assert "Welcome, Known Person — your access is active" in response.content.decode()
    member = _member(portal)
    assert member.status == PortalUser.Status.ACTIVE
    assert member.global_user_id == account.id
    assert _invitation(portal).status == Invitation.Status.ACCEPTED
    assert User.objects.filter(email__iexact=EMAIL).count() == 1


# Links that do not work ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    ["garbage", "A" * 43, "x" * 200, "x" * 201, "%3Cscript%3Ealert(1)%3C", "%E2%98%83", "a%00b"],
)
def test_unknown_tokens_get_the_neutral_404_page(page_client: Client, invite_by_mail: Invite, token: str) -> None:
    invite_by_mail()

    response = page_client.get(f"/invite/{token}")
    posted = _accept(page_client, token, name="X", password=NEW_PASSWORD, password_confirm=NEW_PASSWORD)

    _assert_invalid_page(response, EMAIL, "<script>alert")
    _assert_invalid_page(posted, EMAIL, "<script>alert")
    assert not User.objects.filter(email__iexact=EMAIL).exists()


def test_an_expired_invitation_is_404(page_client: Client, invite_by_mail: Invite, portal: Portal) -> None:
    token = invite_by_mail()
    with tenant_context(portal):
        Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = page_client.get(f"/invite/{token}")
    posted = _accept(page_client, token, name="X", password=NEW_PASSWORD, password_confirm=NEW_PASSWORD)

    _assert_invalid_page(response, EMAIL)
    _assert_invalid_page(posted, EMAIL)
    assert not User.objects.filter(email__iexact=EMAIL).exists()


def test_a_revoked_invitation_is_404(
    page_client: Client, invite_by_mail: Invite, portal: Portal, owner_on_portal: APIClient
) -> None:
    token = invite_by_mail()
    revoked = owner_on_portal.delete(f"/v1/customer-portal/invitations/{_invitation(portal).id}")
    assert revoked.status_code == 200

    response = page_client.get(f"/invite/{token}")
    posted = _accept(page_client, token, name="X", password=NEW_PASSWORD, password_confirm=NEW_PASSWORD)

    _assert_invalid_page(response, EMAIL)
    _assert_invalid_page(posted, EMAIL)
    assert not User.objects.filter(email__iexact=EMAIL).exists()


def test_a_link_only_works_on_its_own_portal(invite_by_mail: Invite, test_portal: Portal) -> None:
    token = invite_by_mail()

    response = Client(HTTP_HOST=TEST_PORTAL_HOST).get(f"/invite/{token}")

    _assert_invalid_page(response, EMAIL)


def test_the_pages_do_not_exist_on_the_main_host(invite_by_mail: Invite) -> None:
    token = invite_by_mail()
    client = Client(HTTP_HOST=MAIN_HOST)

    for path in ("/invite/x", f"/invite/{token}"):
        response = client.get(path)
        assert response.status_code == 404
        assert EMAIL not in response.content.decode()
        assert INVALID_INVITATION not in response.content.decode()
    assert client.post(f"/invite/{token}", {"password": NEW_PASSWORD}).status_code == 404
    assert not User.objects.filter(email__iexact=EMAIL).exists()


# CSRF and throttling -------------------------------------------------------------------------------


def test_the_form_is_csrf_protected(portal: Portal, invite_by_mail: Invite) -> None:
    token = invite_by_mail()
    client = Client(HTTP_HOST=HOST, enforce_csrf_checks=True)
    fields = {"name": "Nadia", "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}

    form = client.get(f"/invite/{token}")
    csrf_token = client.cookies["csrftoken"].value
    forged = Client(HTTP_HOST=HOST, enforce_csrf_checks=True).post(f"/invite/{token}", fields)
    accepted = client.post(f"/invite/{token}", {**fields, "csrfmiddlewaretoken": csrf_token})

    assert form.status_code == 200
    assert forged.status_code == 403
    assert accepted.status_code == 200
    assert User.objects.get(email__iexact=EMAIL).check_password(NEW_PASSWORD)


def test_password_attempts_share_the_accept_throttle(
    page_client: Client, invite_by_mail: Invite, portal: Portal, settings: Any
) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"auth": "2/min"}}
    token = invite_by_mail()
    UserFactory(email=EMAIL)

    statuses = [_accept(page_client, token, password=WRONG_PASSWORD).status_code for _ in range(2)]
    throttled = _accept(page_client, token, password=DEFAULT_PASSWORD)
    api = APIClient(HTTP_HOST=HOST).post(
        "/v1/customer-portal/invitations/accept", {"token": token, "password": DEFAULT_PASSWORD}, format="json"
    )

    assert statuses == [422, 422]
    assert throttled.status_code == 429
    assert 0 < int(throttled["Retry-After"]) <= 60
    assert "Too many attempts" in throttled.content.decode()
    assert api.status_code == 429  # one budget for the page and the API
    assert _member(portal).status == PortalUser.Status.INVITED
