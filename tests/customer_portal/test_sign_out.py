"""Refresh chains end JWT_SESSION_MAX_AGE after their login; logout everywhere and a password change end
every refresh token and every portal session of the account (issue 13)."""

import time
from io import StringIO
from unittest import mock

import pytest
from django.contrib.auth.models import update_last_login
from django.core.management import call_command
from django.utils import timezone
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.services import expired_tokens_flush
from customer_portal.models import PortalSession
from portals.models import Portal
from tests.conftest import PortalUserLogin, make_portal, portal_login, web_client
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db
DAY = 24 * 3600


def _refresh(client: APIClient, refresh: str):
    return client.post("/v1/auth/token/refresh", {"refresh": refresh}, format="json")


def _live_sessions(portal: Portal) -> int:
    with tenant_context(portal):
        return PortalSession.objects.filter(ended_at__isnull=True).count()


# JWT_SESSION_MAX_AGE ---------------------------------------------------------------------------


def test_a_refresh_chain_ends_thirty_days_after_its_login_however_often_it_rotates(api_client, owner, settings):
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "REFRESH_TOKEN_LIFETIME": timezone.timedelta(days=2)}
    login = api_client.post("/v1/auth/token", {"email": owner.email, "password": DEFAULT_PASSWORD}, format="json")
    refresh = login.json()["refresh"]
    started = time.time()

    for day in range(1, 30):  # rotated every day: each token lives 2 days, so only the chain's age can end it
        with mock.patch("time.time", return_value=started + day * DAY):
            rotated = _refresh(api_client, refresh)
        assert rotated.status_code == 200, (day, rotated.content)
        refresh = rotated.json()["refresh"]
    with mock.patch("time.time", return_value=started + 30 * DAY + 60):
        refused = _refresh(api_client, refresh)

    assert refused.status_code == 401
    assert "log in again" in refused.json()["detail"]
    assert RefreshToken(refresh, verify=False)["auth_time"] == int(started)


def test_a_token_from_before_the_claim_starts_its_chain_at_its_first_rotation(api_client, owner):
    legacy = RefreshToken.for_user(owner)  # minted without the login time, as before this change

    rotated = _refresh(api_client, str(legacy)).json()["refresh"]

    assert RefreshToken(rotated, verify=False)["auth_time"] == legacy["iat"]


# Logout everywhere ----------------------------------------------------------------------------


def test_logout_everywhere_ends_every_refresh_token_and_portal_session_of_the_account(
    portal: Portal, portal_user: PortalUserLogin, owner, portal_host: str
):
    other_portal = make_portal(owner, name="Other", slug="other")
    from customer_portal.services import InviteEntry, portal_users_invite

    with tenant_context(other_portal):
        portal_users_invite(portal=other_portal, entries=[InviteEntry(email=portal_user.account.email)],
                            invited_by=None, send_email=False)  # fmt: skip
    second = [portal_login(portal_host, portal_user.account.email)[1] for _ in range(2)]
    elsewhere = portal_login("other.localhost", portal_user.account.email)[1]
    api = APIClient(HTTP_HOST="localhost")
    account = api.post("/v1/auth/token", {"email": portal_user.account.email, "password": DEFAULT_PASSWORD},
                       format="json").json()  # fmt: skip
    assert (_live_sessions(portal), _live_sessions(other_portal)) == (3, 1)

    response = APIClient(HTTP_HOST=portal_host).post(
        "/v1/auth/logout", {"refresh": portal_user.refresh, "everywhere": True}, format="json"
    )

    assert (response.status_code, response.json()) == (200, {})
    assert (_live_sessions(portal), _live_sessions(other_portal)) == (0, 0)
    for tokens, where in [
        (second[0], portal_host),
        (second[1], portal_host),
        (elsewhere, "other.localhost"),
        (account, "localhost"),
    ]:
        assert _refresh(APIClient(HTTP_HOST=where), tokens["refresh"]).status_code == 401, where
    me = APIClient(HTTP_HOST=portal_host, HTTP_AUTHORIZATION=f"Bearer {second[0]['access']}").get(
        "/v1/customer-portal/me"
    )
    assert me.status_code == 401  # a portal token's session is checked on every request


def test_a_plain_logout_ends_only_its_own_session(portal: Portal, portal_user: PortalUserLogin, portal_host: str):
    other = portal_login(portal_host, portal_user.account.email)[1]

    APIClient(HTTP_HOST=portal_host).post("/v1/auth/logout", {"refresh": portal_user.refresh}, format="json")

    assert _live_sessions(portal) == 1
    assert _refresh(APIClient(HTTP_HOST=portal_host), other["refresh"]).status_code == 200


# A password change ------------------------------------------------------------------------------


def test_changepassword_ends_every_refresh_token_and_portal_session(portal: Portal, portal_user: PortalUserLogin):
    update_last_login(None, portal_user.account)

    with mock.patch("getpass.getpass", return_value="a-New-passw0rd-here"):
        call_command("changepassword", portal_user.account.email, stdout=StringIO())

    assert _live_sessions(portal) == 0
    assert _refresh(APIClient(HTTP_HOST=f"{portal.slug}.localhost"), portal_user.refresh).status_code == 401


def test_a_password_change_in_the_admin_ends_the_accounts_other_sign_ins(api_client, owner):
    tokens = api_client.post("/v1/auth/token", {"email": owner.email, "password": DEFAULT_PASSWORD},
                             format="json").json()  # fmt: skip
    browser = web_client()
    assert browser.post("/admin/login/", {"username": owner.email, "password": DEFAULT_PASSWORD}).status_code == 302
    elsewhere = web_client()
    elsewhere.post("/admin/login/", {"username": owner.email, "password": DEFAULT_PASSWORD})

    new = "a-New-passw0rd-here"
    form = {"old_password": DEFAULT_PASSWORD, "new_password1": new, "new_password2": new}
    response = browser.post("/admin/password_change/", form)

    assert response.status_code == 302, response.content.decode()[-3000:]
    assert _refresh(api_client, tokens["refresh"]).status_code == 401
    assert browser.get("/admin/").status_code == 200  # the session that changed it stays signed in
    assert elsewhere.get("/admin/").status_code == 302  # every other one is signed out


# Clean-up ----------------------------------------------------------------------------------------


def test_expired_refresh_tokens_and_their_blacklist_rows_are_flushed(owner):
    live = RefreshToken.for_user(owner)
    expired = RefreshToken.for_user(owner)
    expired.blacklist()
    OutstandingToken.objects.filter(jti=expired["jti"]).update(expires_at=timezone.now() - timezone.timedelta(1))

    assert expired_tokens_flush() == 2  # the outstanding row and its blacklist row

    assert list(OutstandingToken.objects.filter(user=owner).values_list("jti", flat=True)) == [live["jti"]]
    assert not BlacklistedToken.objects.filter(token__jti=expired["jti"]).exists()
