"""The JSON side of issue 16: /v1/auth/password/*, /v1/auth/email-link(/verify), /v1/customer-portal/me/sessions."""

from typing import Any

import pytest
from django.core import mail
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from customer_portal.models import PortalSession, SignInToken
from customer_portal.services import INVALID_LINK, SIGN_IN_REFUSED
from portals.models import Portal
from tests.conftest import (
    MAIN_HOST,
    PORTAL_HOST,
    PORTAL_USER_EMAIL,
    PortalUserLogin,
    invite,
    mailed_code,
    mailed_link,
    portal_login,
    token_client,
)
from tests.factories import DEFAULT_PASSWORD
from tests.jobs import queued_jobs, run_jobs

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "harvest kettle jasmine 3390"


@pytest.fixture
def anonymous(portal_host: str) -> APIClient:
    return APIClient(HTTP_HOST=portal_host)


def _post(client: APIClient, path: str, body: dict[str, Any]):
    return client.post(path, body, format="json")


def _mail(client: APIClient, path: str, email: str = PORTAL_USER_EMAIL) -> mail.EmailMessage | None:
    response = _post(client, path, {"email": email})
    assert (response.status_code, response.json()) == (202, {})
    run_jobs()
    return mail.outbox.pop() if mail.outbox else None


def _token(message: mail.EmailMessage) -> str:
    return mailed_link(message.body).token


def _code(message: mail.EmailMessage) -> str:
    return mailed_code(message.body)


def _refused(response) -> None:
    assert response.status_code == 401
    assert response.json() == {"detail": SIGN_IN_REFUSED}
    assert response["WWW-Authenticate"].startswith("Bearer")


# Enumeration -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/auth/password/forgot", "/v1/auth/email-link"])
@pytest.mark.parametrize("who", ["unknown", "revoked", "foreign-portal", "invited-not-joined"])
def test_the_answer_is_the_same_and_no_mail_goes_to_anyone_but_an_active_member(
    anonymous, portal, portal_user, outsider_portal, owner_on_portal, path, who
):
    email = {"unknown": "nobody@example.com", "revoked": PORTAL_USER_EMAIL}.get(who, "")
    if who == "revoked":
        assert owner_on_portal.delete(f"/v1/customer-portal/users/{portal_user.member.id}/access").status_code == 200
    elif who == "foreign-portal":
        email = "elsewhere@example.com"
        User.objects.create_user(email=email, password=DEFAULT_PASSWORD)
        invite(outsider_portal, email)  # an active member there, not here
    elif who == "invited-not-joined":
        email = "invitee@example.com"
        assert _post(owner_on_portal, "/v1/customer-portal/invitations", {"email": email}).status_code == 201
        run_jobs()
        mail.outbox.clear()
    member = _mail(anonymous, path)  # the member's answer, for comparison

    response = _post(anonymous, path, {"email": email})
    run_jobs()

    assert member is not None or who == "revoked"
    assert (response.status_code, response.json()) == (202, {})
    assert mail.outbox == []
    assert queued_jobs() == []


def test_forgot_and_email_link_validate_the_address(anonymous):
    for path in ("/v1/auth/password/forgot", "/v1/auth/email-link"):
        response = _post(anonymous, path, {"email": "not an address"})
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "email"]


def test_email_link_needs_a_portal(api_client):
    response = _post(api_client, "/v1/auth/email-link", {"email": PORTAL_USER_EMAIL})

    assert response.status_code == 404


def test_the_endpoints_are_throttled_with_retry_after(anonymous, portal_user, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"auth": "1/min"}}
    for path, body in [
        ("/v1/auth/password/forgot", {"email": PORTAL_USER_EMAIL}),
        ("/v1/auth/password/reset", {"token": "x", "password": NEW_PASSWORD}),
        ("/v1/auth/email-link", {"email": PORTAL_USER_EMAIL}),
        ("/v1/auth/email-link/verify", {"email": PORTAL_USER_EMAIL, "code": "123456"}),
    ]:
        response = _post(anonymous, path, body)
        assert response.status_code == 429, path
        assert 0 < int(response["Retry-After"]) <= 60


# Password reset ----------------------------------------------------------------------------------------------


def test_a_reset_sets_the_password_and_ends_old_refresh_tokens_and_sessions(
    anonymous, portal, portal_user: PortalUserLogin
):
    token = _token(_mail(anonymous, "/v1/auth/password/forgot"))

    response = _post(anonymous, "/v1/auth/password/reset", {"token": token, "password": NEW_PASSWORD})

    assert (response.status_code, response.json()) == (200, {})
    refresh = _post(anonymous, "/v1/auth/token/refresh", {"refresh": portal_user.refresh})
    assert refresh.status_code == 401
    assert not OutstandingToken.objects.filter(user=portal_user.account, blacklistedtoken__isnull=True).exists()
    assert portal_user.client.get("/v1/customer-portal/me").status_code == 401
    assert portal_login(PORTAL_HOST, PORTAL_USER_EMAIL, DEFAULT_PASSWORD)[0] == 401
    assert portal_login(PORTAL_HOST, PORTAL_USER_EMAIL, NEW_PASSWORD)[0] == 200


@pytest.mark.parametrize("state", ["used", "expired", "unknown", "replaced", "sign-in-link", "other-portal"])
def test_every_invalid_reset_token_is_the_same_422(anonymous, portal, portal_user, test_portal, state):
    token = _token(_mail(anonymous, "/v1/auth/password/forgot"))
    client = anonymous
    if state == "used":
        assert (
            _post(anonymous, "/v1/auth/password/reset", {"token": token, "password": NEW_PASSWORD}).status_code == 200
        )
    elif state == "expired":
        with tenant_context(portal):
            SignInToken.objects.update(expires_at="2000-01-01T00:00:00Z")
    elif state == "unknown":
        token = "B" * 43
    elif state == "replaced":
        _mail(anonymous, "/v1/auth/password/forgot")
    elif state == "sign-in-link":
        token = _token(_mail(anonymous, "/v1/auth/email-link"))
    else:
        client = APIClient(HTTP_HOST="test.localhost")

    response = _post(client, "/v1/auth/password/reset", {"token": token, "password": "another good one 4471"})

    assert response.status_code == 422
    assert response.json()["detail"] == [{"loc": ["body", "token"], "msg": INVALID_LINK, "type": "value_error"}]


def test_a_weak_password_is_refused_at_password_and_the_link_still_works(anonymous, portal_user):
    token = _token(_mail(anonymous, "/v1/auth/password/forgot"))

    weak = _post(anonymous, "/v1/auth/password/reset", {"token": token, "password": "12345678"})
    good = _post(anonymous, "/v1/auth/password/reset", {"token": token, "password": NEW_PASSWORD})

    assert weak.status_code == 422
    assert {item["loc"][1] for item in weak.json()["detail"]} == {"password"}
    assert good.status_code == 200


def test_org_admins_reset_on_the_main_host(api_client, owner):
    login = _post(api_client, "/v1/auth/token", {"email": owner.email, "password": DEFAULT_PASSWORD})
    message = _mail(api_client, "/v1/auth/password/forgot", owner.email)
    found = mailed_link(message.body)
    assert (found.host, found.page) == (f"{MAIN_HOST}:8000", "password/reset")
    token = found.token

    reset = _post(api_client, "/v1/auth/password/reset", {"token": token, "password": NEW_PASSWORD})
    again = _post(api_client, "/v1/auth/password/reset", {"token": token, "password": "yet another one 5512"})

    assert (reset.status_code, reset.json()) == (200, {})
    assert again.status_code == 422 and again.json()["detail"][0]["loc"] == ["body", "token"]
    assert _post(api_client, "/v1/auth/token/refresh", {"refresh": login.json()["refresh"]}).status_code == 401
    assert User.objects.get(id=owner.id).check_password(NEW_PASSWORD)
    assert _mail(api_client, "/v1/auth/password/forgot", "nobody@example.com") is None


# Sign-in by e-mail -------------------------------------------------------------------------------------------


def test_a_link_signs_in_once_with_a_portal_scoped_pair(anonymous, portal, portal_user):
    message = _mail(anonymous, "/v1/auth/email-link")
    assert mailed_link(message.body).host == f"{PORTAL_HOST}:8000"
    token = _token(message)

    first = _post(anonymous, "/v1/auth/email-link/verify", {"token": token})
    second = _post(anonymous, "/v1/auth/email-link/verify", {"token": token})

    assert first.status_code == 200 and set(first.json()) == {"access", "refresh"}
    me = token_client(first.json()["access"], PORTAL_HOST).get("/v1/customer-portal/me")
    assert me.status_code == 200 and me.json()["user"]["email"] == PORTAL_USER_EMAIL
    _refused(second)


def test_the_code_has_five_tries(anonymous, portal_user):
    code = _code(_mail(anonymous, "/v1/auth/email-link"))
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"

    for _ in range(5):
        _refused(_post(anonymous, "/v1/auth/email-link/verify", {"email": PORTAL_USER_EMAIL, "code": wrong}))
    _refused(_post(anonymous, "/v1/auth/email-link/verify", {"email": PORTAL_USER_EMAIL, "code": code}))

    code = _code(_mail(anonymous, "/v1/auth/email-link"))
    for _ in range(4):
        _refused(_post(anonymous, "/v1/auth/email-link/verify", {"email": PORTAL_USER_EMAIL, "code": wrong}))
    signed_in = _post(anonymous, "/v1/auth/email-link/verify", {"email": PORTAL_USER_EMAIL, "code": code})
    assert signed_in.status_code == 200


def test_a_code_for_an_unknown_address_is_refused_alike(anonymous, portal_user):
    _refused(_post(anonymous, "/v1/auth/email-link/verify", {"email": "nobody@example.com", "code": "000000"}))
    _refused(_post(anonymous, "/v1/auth/email-link/verify", {"token": "C" * 43}))


@pytest.mark.parametrize(
    ("body", "locs"),
    [
        ({}, [["body", "code"], ["body", "email"]]),
        ({"email": PORTAL_USER_EMAIL}, [["body", "code"]]),
        ({"email": PORTAL_USER_EMAIL, "code": "12345"}, [["body", "code"]]),
        ({"token": "x", "code": "123456"}, [["body", "token"]]),
        ({"token": "x", "extra": 1}, [["body", "extra"]]),
    ],
)
def test_verify_wants_a_token_or_an_email_and_a_code(anonymous, body, locs):
    response = _post(anonymous, "/v1/auth/email-link/verify", body)

    assert response.status_code == 422
    assert sorted(item["loc"] for item in response.json()["detail"]) == locs


# The caller's own sessions -----------------------------------------------------------------------------------


def test_a_member_lists_and_ends_their_own_sessions_only(
    portal, portal_user, make_portal_user, django_assert_num_queries
):
    status, second = portal_login(PORTAL_HOST, PORTAL_USER_EMAIL)
    assert status == 200
    other = make_portal_user("other@example.com")
    with tenant_context(portal):
        theirs = PortalSession.objects.get(portal_user=other.member)

    with django_assert_num_queries(2, info="session check, the member's sessions"):
        listed = portal_user.client.get("/v1/customer-portal/me/sessions")

    assert listed.status_code == 200
    assert [s["user"]["email"] for s in listed.json()] == [PORTAL_USER_EMAIL] * 2
    mine = {s["id"] for s in listed.json()}
    assert str(theirs.id) not in mine
    second_session = next(s for s in mine if s != str(portal_user_session(portal_user, portal)))
    foreign = portal_user.client.delete(f"/v1/customer-portal/me/sessions/{theirs.id}")
    ended = portal_user.client.delete(f"/v1/customer-portal/me/sessions/{second_session}")

    assert foreign.status_code == 404
    assert (ended.status_code, ended.json()) == (200, {})
    assert token_client(second["access"], PORTAL_HOST).get("/v1/customer-portal/me").status_code == 401
    assert [s["id"] for s in portal_user.client.get("/v1/customer-portal/me/sessions").json()] == [
        str(portal_user_session(portal_user, portal))
    ]


def test_the_session_list_costs_the_same_for_one_session_and_ten(portal, portal_user, django_assert_num_queries):
    for _ in range(9):
        assert portal_login(PORTAL_HOST, PORTAL_USER_EMAIL)[0] == 200
    with django_assert_num_queries(2, info="session check, the member's sessions"):
        response = portal_user.client.get("/v1/customer-portal/me/sessions")
    assert len(response.json()) == 10


def test_only_a_portal_users_token_has_own_sessions(owner_on_portal, anonymous):
    assert owner_on_portal.get("/v1/customer-portal/me/sessions").status_code == 403
    assert anonymous.get("/v1/customer-portal/me/sessions").status_code == 401


def portal_user_session(login: PortalUserLogin, portal: Portal) -> str:
    """The id of the session the fixture's own token carries."""
    return str(AccessToken(login.access)["session_id"])


def test_an_address_gets_a_limited_number_of_e_mails_whoever_asks_and_whether_or_not_it_exists(
    portal_host, portal_user, settings
):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "email": "2/hour"},
    }
    for email in (PORTAL_USER_EMAIL, "nobody@example.com"):
        statuses = [
            _post(APIClient(HTTP_HOST=portal_host, REMOTE_ADDR=f"10.0.0.{n}"), path, {"email": email.upper()})
            for n, path in enumerate(["/v1/auth/password/forgot", "/v1/auth/email-link", "/v1/auth/email-link"])
        ]
        assert [response.status_code for response in statuses] == [202, 202, 429], email
        assert int(statuses[-1]["Retry-After"]) > 0
    run_jobs()
    assert len(mail.outbox) == 2  # the member's two
