"""The sign-in pages on a portal host (issue 16): password, e-mailed link or code, sign-out, forgotten
password, the account page, and the browser session behind a cookie."""

import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from accounts.models import User
from customer_portal.models import PortalSession, SignInToken
from customer_portal.pages import EMAIL_SENT, NOTICES, SIGN_IN_FAILED
from customer_portal.selectors import live_sessions
from customer_portal.services import INVALID_LINK, SIGN_IN_REFUSED, portal_session_end, portal_user_revoke
from portals.models import Portal
from tests.conftest import (
    PORTAL_HOST,
    PORTAL_USER_EMAIL,
    TEST_PORTAL_HOST,
    PortalUserLogin,
    invite,
    mailed_code,
    mailed_link,
    token_client,
    verified_custom_domain,
)
from tests.factories import DEFAULT_PASSWORD
from tests.jobs import run_jobs

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "lantern meadow copper 7713"
COOKIE = "portal_session"


@pytest.fixture
def browser(portal_host: str) -> Client:
    return Client(HTTP_HOST=portal_host, HTTP_USER_AGENT="Test browser/1.0")


def _sign_in(client: Client, email: str = PORTAL_USER_EMAIL, password: str = DEFAULT_PASSWORD, **extra: str):
    return client.post("/login", {"email": email, "password": password, **extra})


def _live(portal: Portal) -> list[PortalSession]:
    with tenant_context(portal):
        return list(live_sessions().order_by("created_at"))


def _main(response) -> str:
    """The page's own content, below the header (which names whoever is signed in)."""
    return response.content.decode().split('<main id="main">')[1]


def _mailed_link(message: mail.EmailMessage) -> tuple[str, str]:
    found = mailed_link(message.body)
    return found.host, found.path


def _ask(client: Client, path: str, email: str = PORTAL_USER_EMAIL) -> mail.EmailMessage | None:
    response = client.post(path, {"email": email})
    assert response.status_code == 200
    assert EMAIL_SENT in response.content.decode()
    run_jobs()
    return mail.outbox.pop() if mail.outbox else None


# Password sign-in and the cookie ---------------------------------------------------------------------------


def test_signing_in_sets_an_http_only_lax_cookie_and_home_says_who_is_signed_in(
    browser, portal, portal_user: PortalUserLogin, settings
):
    settings.SESSION_COOKIE_SECURE = True  # production (DEBUG=false)
    form = browser.get("/login")
    assert form.status_code == 200 and 'name="password"' in form.content.decode()

    response = _sign_in(browser)

    assert (response.status_code, response["Location"]) == (302, "/")
    cookie = response.cookies[COOKIE]
    assert cookie["httponly"] and cookie["secure"] and cookie["samesite"] == "Lax"
    assert cookie["domain"] == ""  # this host only
    home = browser.get("/").content.decode()
    assert f"Signed in as <strong>{PORTAL_USER_EMAIL}</strong>." in home
    [_, session] = _live(portal)  # the token login of the fixture, and the browser's
    assert (session.user_agent, session.ip_address) == ("Test browser/1.0", "127.0.0.1")


def test_a_signed_in_page_view_checks_the_session_in_one_query(browser, portal, portal_user, django_assert_num_queries):
    _sign_in(browser)
    browser.get("/")  # warm: the route is cached

    with django_assert_num_queries(3, info="session check, portal settings, features"):
        response = browser.get("/")
    assert "Signed in as" in response.content.decode()
    browser.cookies.pop(COOKIE)
    with django_assert_num_queries(2, info="portal settings, features"):
        browser.get("/")


@pytest.mark.parametrize(
    ("wanted", "lands"),
    [
        ("/account", "/account"),
        ("/login/code?x=1", "/login/code?x=1"),
        ("//evil.example.com/", "/"),
        ("https://evil.example.com/", "/"),
        ("/\\evil.example.com", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_next_goes_only_to_a_path_on_this_host(browser, portal_user, wanted, lands):
    assert browser.get(f"/login?next={wanted}").status_code == 200

    response = _sign_in(browser, next=wanted)

    assert response["Location"] == lands


@pytest.mark.parametrize("who", ["wrong-password", "unknown", "no-membership", "revoked", "inactive-account"])
def test_every_failed_sign_in_gets_the_same_answer(browser, portal, portal_user, make_org_user, who):
    email, password = PORTAL_USER_EMAIL, DEFAULT_PASSWORD
    if who == "wrong-password":
        password = "not it at all"
    elif who == "unknown":
        email = "nobody@example.com"
    elif who == "no-membership":
        email = make_org_user().email
    elif who == "revoked":
        with tenant_context(portal):
            portal_user_revoke(portal_user_id=portal_user.member.id)
    else:
        User.objects.filter(id=portal_user.account.id).update(is_active=False)
    sessions_before = len(_live(portal))

    response = _sign_in(browser, email=email, password=password)

    assert response.status_code == 422
    errors = re.findall(r'<div class="errors" role="alert">\s*<p>(.*?)</p>', response.content.decode())
    assert errors == [SIGN_IN_FAILED.replace("'", "&#x27;")]
    assert COOKIE not in response.cookies
    assert len(_live(portal)) == sessions_before


def test_sign_in_is_throttled_per_ip_with_the_wait(browser, portal_user, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"auth": "3/min"}}

    statuses = [_sign_in(browser, password="wrong").status_code for _ in range(2)]
    throttled = _sign_in(browser)
    api = APIClient(HTTP_HOST=PORTAL_HOST).post(
        "/v1/auth/token", {"email": PORTAL_USER_EMAIL, "password": DEFAULT_PASSWORD}, format="json"
    )

    assert statuses == [422, 422]
    assert throttled.status_code == 429
    assert 0 < int(throttled["Retry-After"]) <= 60
    assert "Try again in" in throttled.content.decode()
    assert api.status_code == 429  # one budget for the pages and the API


def test_an_account_locked_out_by_failed_sign_ins_gets_a_429_page_even_with_the_right_password(
    browser, portal_user, settings
):
    settings.AXES_FAILURE_LIMIT = 3
    statuses = [_sign_in(browser, password="wrong").status_code for _ in range(3)]  # the third one locks

    locked = _sign_in(browser)

    assert statuses == [422, 422, 429]

    assert locked.status_code == 429
    assert int(locked["Retry-After"]) == 900
    assert "Too many failed sign-ins" in locked.content.decode()


def test_the_forms_are_csrf_protected(portal_host, portal_user):
    client = Client(HTTP_HOST=portal_host, enforce_csrf_checks=True)
    client.get("/login")
    forged = Client(HTTP_HOST=portal_host, enforce_csrf_checks=True).post(
        "/login", {"email": PORTAL_USER_EMAIL, "password": DEFAULT_PASSWORD}
    )
    signed_in = _sign_in(client, csrfmiddlewaretoken=client.cookies["csrftoken"].value)

    assert forged.status_code == 403
    assert signed_in.status_code == 302
    assert client.post("/logout").status_code == 403  # no token: the sign-out form is protected too


# Signing out, and being signed out ------------------------------------------------------------------------


def test_sign_out_ends_the_session_and_is_post_only(browser, portal, portal_user):
    _sign_in(browser)
    assert browser.get("/logout").status_code == 405

    response = browser.post("/logout")

    assert (response.status_code, response["Location"]) == (302, "/login?done=signed_out")
    assert response.cookies[COOKIE].value == ""
    assert len(_live(portal)) == 1  # only the fixture's token login is left
    assert NOTICES["signed_out"] in browser.get("/login?done=signed_out").content.decode()


@pytest.mark.parametrize("how", ["admin-api", "admin-page", "service", "revocation", "removal", "logout-everywhere"])
def test_ending_the_session_anywhere_signs_the_browser_out_at_its_next_request(
    browser, portal, portal_user, owner_on_portal, owner_web, how
):
    _sign_in(browser)
    [_, session] = _live(portal)
    assert "Signed in as" in browser.get("/").content.decode()

    if how == "admin-api":
        assert owner_on_portal.delete(f"/v1/customer-portal/sessions/{session.id}").status_code == 200
    elif how == "admin-page":
        ended = owner_web.post(f"/admin/portals/portal/{portal.pk}/sessions/", {"session": str(session.id)})
        assert ended.status_code == 302
    elif how == "service":
        with tenant_context(portal):
            portal_session_end(session_id=session.id)
    elif how == "revocation":
        assert owner_on_portal.delete(f"/v1/customer-portal/users/{portal_user.member.id}/access").status_code == 200
    elif how == "removal":
        assert owner_on_portal.delete(f"/v1/customer-portal/users/{portal_user.member.id}").status_code == 200
    else:
        logout = portal_user.client.post(
            "/v1/auth/logout", {"refresh": portal_user.refresh, "everywhere": True}, format="json"
        )
        assert logout.status_code == 200

    home = browser.get("/").content.decode()
    assert "Signed in as" not in home and 'href="/login">Sign in</a>' in home
    assert (browser.get("/account").status_code, browser.get("/account")["Location"]) == (302, "/login?next=%2Faccount")


def test_a_forged_or_foreign_cookie_signs_no_one_in(browser, portal, portal_user, test_portal):
    _sign_in(browser)
    [_, session] = _live(portal)
    value = browser.cookies[COOKIE].value

    forged = Client(HTTP_HOST=PORTAL_HOST)
    forged.cookies[COOKIE] = f"{session.id}:{portal_user.account.id}"  # the ids an admin sees, unsigned
    elsewhere = Client(HTTP_HOST=TEST_PORTAL_HOST)
    elsewhere.cookies[COOKIE] = value  # a good cookie, on another portal's host

    assert "Signed in as" not in forged.get("/").content.decode()
    assert "Signed in as" not in elsewhere.get("/").content.decode()


# Sign-in by e-mail -----------------------------------------------------------------------------------------


def test_a_sign_in_link_needs_its_button_and_works_once(browser, portal, portal_user):
    message = _ask(browser, "/login/email")
    assert message is not None
    host, path = _mailed_link(message)
    assert host == f"{PORTAL_HOST}:8000"

    for _ in range(2):  # a mail scanner, then the person: a GET uses nothing up
        shown = browser.get(path)
        assert shown.status_code == 200 and "Press the button" in shown.content.decode()
    signed_in = browser.post(path)
    again = Client(HTTP_HOST=PORTAL_HOST).post(path)

    assert (signed_in.status_code, signed_in["Location"]) == (302, "/")
    assert "Signed in as" in browser.get("/").content.decode()
    assert again.status_code == 404 and INVALID_LINK in again.content.decode()
    assert Client(HTTP_HOST=PORTAL_HOST).get(path).status_code == 404


def test_asking_for_a_link_says_the_same_and_mails_only_an_active_member(browser, portal, portal_user):
    assert _ask(browser, "/login/email", "nobody@example.com") is None
    assert _ask(browser, "/login/email", "not an address") is None
    assert _ask(browser, "/login/email", PORTAL_USER_EMAIL) is not None


def test_the_code_signs_in_from_the_page_the_request_shows(browser, portal, portal_user):
    asked = browser.post("/login/email", {"email": PORTAL_USER_EMAIL})
    assert 'action="/login/code"' in asked.content.decode()
    assert f'value="{PORTAL_USER_EMAIL}"' in asked.content.decode()
    run_jobs()
    code = mailed_code(mail.outbox[-1].body)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"

    refused = browser.post("/login/code", {"email": PORTAL_USER_EMAIL, "code": wrong})
    signed_in = browser.post("/login/code", {"email": PORTAL_USER_EMAIL, "code": code})

    assert refused.status_code == 422
    assert SIGN_IN_REFUSED in refused.content.decode()
    assert (signed_in.status_code, signed_in["Location"]) == (302, "/")


_VALID_RESET = {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}


@pytest.mark.parametrize("state", ["unknown", "used", "expired", "replaced", "other-kind", "other-portal"])
@pytest.mark.parametrize(
    ("ask", "other_ask"), [("/login/email", "/password/forgot"), ("/password/forgot", "/login/email")]
)
def test_every_invalid_link_gets_the_same_page(browser, portal, portal_user, test_portal, state, ask, other_ask):
    _, path = _mailed_link(_ask(browser, ask))
    page = path.rsplit("/", 1)[0]
    client = Client(HTTP_HOST=PORTAL_HOST)
    if state == "unknown":
        path = f"{page}/{'A' * 43}"
    elif state == "used":
        assert client.post(path, _VALID_RESET).status_code == 302
    elif state == "expired":
        with tenant_context(portal):
            SignInToken.objects.update(expires_at="2000-01-01T00:00:00Z")
    elif state == "replaced":
        _ask(browser, ask)
    elif state == "other-kind":
        _, other_path = _mailed_link(_ask(browser, other_ask))
        path = f"{page}/{other_path.rsplit('/', 1)[1]}"  # a live token, of the other kind
    else:
        client = Client(HTTP_HOST=TEST_PORTAL_HOST)

    posted = Client(HTTP_HOST=client.defaults["HTTP_HOST"]).post(path, _VALID_RESET)
    for response in (client.get(path), posted):
        assert response.status_code == 404
        assert INVALID_LINK in response.content.decode()
        assert "<form" not in _main(response)
    reset_once = state == "used" and ask == "/password/forgot"  # the one post that was a live reset link
    assert User.objects.get(id=portal_user.account.id).check_password(NEW_PASSWORD) == reset_once


# Forgotten password ------------------------------------------------------------------------------------------


def test_forgot_then_reset_changes_the_password_and_ends_every_other_sign_in(browser, portal, portal_user):
    _sign_in(browser)
    other = Client(HTTP_HOST=PORTAL_HOST)
    _sign_in(other)
    message = _ask(Client(HTTP_HOST=PORTAL_HOST), "/password/forgot")
    _, path = _mailed_link(message)
    assert path.startswith("/password/reset/")

    mismatch = browser.post(path, {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD + "x"})
    weak = browser.post(path, {"password": "password", "password_confirm": "password"})
    reset = browser.post(path, {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})

    assert mismatch.status_code == 422 and "The two passwords do not match." in mismatch.content.decode()
    assert weak.status_code == 422 and "This password is too common." in weak.content.decode()
    assert (reset.status_code, reset["Location"]) == (302, "/login?done=reset")
    assert _live(portal) == []  # both browsers and the token login
    assert "Signed in as" not in other.get("/").content.decode()
    refresh = portal_user.client.post("/v1/auth/token/refresh", {"refresh": portal_user.refresh}, format="json")
    assert refresh.status_code == 401
    assert browser.get(path).status_code == 404  # single use
    assert _sign_in(browser, password=DEFAULT_PASSWORD).status_code == 422
    assert _sign_in(browser, password=NEW_PASSWORD).status_code == 302


def test_forgot_says_the_same_for_every_address(browser, portal, portal_user, make_org_user):
    outsider = make_org_user()
    for email in ("nobody@example.com", outsider.email, "x"):
        assert _ask(browser, "/password/forgot", email) is None
    with tenant_context(portal):
        assert not SignInToken.objects.exists()


# The account page --------------------------------------------------------------------------------------------


def test_the_account_page_needs_a_sign_in_and_shows_this_portals_sessions(browser, portal, portal_user):
    assert browser.get("/account")["Location"] == "/login?next=%2Faccount"
    _sign_in(browser, next="/account")

    page = browser.get("/account").content.decode()

    assert PORTAL_USER_EMAIL in page
    assert page.count('<tr id="session-') == 2  # the token login and this browser
    assert "This browser" in page and "Test browser/1.0" in page and "127.0.0.1" in page


def test_a_member_renames_themselves_here_and_on_their_account(browser, portal, portal_user):
    _sign_in(browser)

    response = browser.post("/account", {"action": "name", "name": "Pat Renamed"})

    assert response["Location"] == "/account?done=name"
    assert "Pat Renamed" in browser.get("/account?done=name").content.decode()
    assert User.objects.get(id=portal_user.account.id).name == "Pat Renamed"
    with tenant_context(portal):
        assert portal_user.member.__class__.objects.get(id=portal_user.member.id).name == "Pat Renamed"


def test_changing_the_password_needs_the_current_one_and_keeps_only_this_browser(browser, portal, portal_user):
    _sign_in(browser)
    other = Client(HTTP_HOST=PORTAL_HOST)
    _sign_in(other)
    change = {"action": "password", "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}

    refused = browser.post("/account", {**change, "current_password": "wrong"})
    changed = browser.post("/account", {**change, "current_password": DEFAULT_PASSWORD})

    assert refused.status_code == 422 and "This is not your current password." in refused.content.decode()
    assert changed["Location"] == "/account?done=password"
    [kept] = _live(portal)
    page = browser.get("/account")
    assert page.status_code == 200 and page.content.decode().count('<tr id="session-') == 1
    assert f'id="session-{kept.id}"' in page.content.decode()
    assert "Signed in as" not in other.get("/").content.decode()
    assert User.objects.get(id=portal_user.account.id).check_password(NEW_PASSWORD)


def test_ending_one_session_or_all_others_from_the_account_page(browser, portal, portal_user, make_portal_user):
    _sign_in(browser)
    second, third = Client(HTTP_HOST=PORTAL_HOST), Client(HTTP_HOST=PORTAL_HOST)
    _sign_in(second)
    _sign_in(third)
    token_session, mine, second_session, _ = _live(portal)
    someone_else = make_portal_user("someone@example.com")
    [theirs] = [s for s in _live(portal) if s.portal_user_id == someone_else.member.id]

    ended = browser.post("/account", {"action": "end_session", "session_id": str(second_session.id)})
    foreign = browser.post("/account", {"action": "end_session", "session_id": str(theirs.id)})

    assert ended["Location"] == foreign["Location"] == "/account?done=ended"
    assert "Signed in as" not in second.get("/").content.decode()
    assert theirs.id in {s.id for s in _live(portal)}  # another member's session is out of reach

    others = browser.post("/account", {"action": "end_others"})

    assert others["Location"] == "/account?done=ended_others"
    assert {s.id for s in _live(portal)} == {mine.id, theirs.id}
    assert "Signed in as" not in third.get("/").content.decode()
    assert "Signed in as" in browser.get("/").content.decode()
    assert token_session.id not in {s.id for s in _live(portal)}


def test_the_account_page_in_one_query_more_than_home(browser, portal, portal_user, django_assert_num_queries):
    _sign_in(browser)
    browser.get("/account")
    with django_assert_num_queries(3, info="session check, portal settings, the member's sessions"):
        browser.get("/account")


def test_the_pages_exist_on_portal_hosts_only(client: Any, portal_user):
    for path in ("/login", "/login/email", "/login/code", "/password/forgot", "/account"):
        assert client.get(path, HTTP_HOST="localhost").status_code == 404


def test_an_invited_person_is_signed_in_by_accepting(portal, portal_host, owner_api):
    invite(portal, "invitee@example.com", send_email=True)
    run_jobs()
    token = mailed_link(mail.outbox[-1].body).token
    browser = Client(HTTP_HOST=portal_host)

    accepted = browser.post(
        f"/invite/{token}", {"name": "Ivy", "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}
    )

    assert accepted.status_code == 200 and COOKIE in accepted.cookies
    assert "Signed in as <strong>Ivy</strong>" in browser.get("/").content.decode()


# A verified custom domain ----------------------------------------------------------------------------------

CUSTOM = "portal.acme.test"


@pytest.fixture
def custom_host(owner_api, portal, dns_zone) -> str:
    """The portal's custom domain, verified (it routes and appears in links)."""
    body = owner_api.patch(f"/v1/portal/{portal.id}", {"custom_domain": CUSTOM}, format="json").json()
    verified_custom_domain(owner_api, dns_zone, body)
    return CUSTOM


def test_every_page_works_on_a_verified_custom_domain_and_links_go_back_to_the_host_asked_on(
    custom_host, portal, portal_user
):
    browser = Client(HTTP_HOST=custom_host)
    for path in ("/", "/login", "/login/email", "/login/code", "/password/forgot"):
        assert browser.get(path).status_code == 200, path

    assert _sign_in(browser)["Location"] == "/"
    assert "Your account" in browser.get("/account").content.decode()
    assert "Signed in as" not in Client(HTTP_HOST=PORTAL_HOST).get("/").content.decode()  # a cookie per host
    link_host, path = _mailed_link(_ask(browser, "/password/forgot"))
    assert link_host == f"{custom_host}:8000"
    assert browser.get(path).status_code == 200
    default_host, _ = _mailed_link(_ask(Client(HTTP_HOST=PORTAL_HOST), "/login/email"))
    assert default_host == f"{PORTAL_HOST}:8000"
    _, sign_in_path = _mailed_link(_ask(browser, "/login/email"))
    assert browser.post(sign_in_path)["Location"] == "/"
    assert browser.post("/logout")["Location"] == "/login?done=signed_out"


def test_the_json_endpoints_work_on_a_verified_custom_domain(custom_host, portal, portal_user):
    client = APIClient(HTTP_HOST=custom_host)

    asked = client.post("/v1/auth/email-link", {"email": PORTAL_USER_EMAIL}, format="json")
    run_jobs()
    link_host, path = _mailed_link(mail.outbox.pop())
    verified = client.post("/v1/auth/email-link/verify", {"token": path.rsplit("/", 1)[1]}, format="json")
    sessions = token_client(verified.json()["access"], custom_host).get("/v1/customer-portal/me/sessions")

    assert asked.status_code == 202 and link_host == f"{custom_host}:8000"
    assert verified.status_code == 200
    assert sessions.status_code == 200 and len(sessions.json()) == 2
    forgot = client.post("/v1/auth/password/forgot", {"email": PORTAL_USER_EMAIL}, format="json")
    run_jobs()
    _, reset_path = _mailed_link(mail.outbox.pop())
    reset = client.post(
        "/v1/auth/password/reset", {"token": reset_path.rsplit("/", 1)[1], "password": NEW_PASSWORD}, format="json"
    )
    assert (forgot.status_code, reset.status_code) == (202, 200)


def test_a_code_of_any_characters_is_refused_like_a_wrong_one(browser, portal, portal_user):
    _ask(browser, "/login/email")

    fullwidth = "".join(chr(0xFF10 + int(digit)) for digit in "123456")  # digits, but not ASCII ones

    response = browser.post("/login/code", {"email": PORTAL_USER_EMAIL, "code": fullwidth})

    assert response.status_code == 422
    assert SIGN_IN_REFUSED in response.content.decode()


def test_pages_that_name_who_is_signed_in_are_never_cached(browser, portal_user):
    _sign_in(browser)

    for path in ("/", "/account", "/login"):
        assert "no-store" in browser.get(path)["Cache-Control"], path


def test_the_e_mail_pages_share_the_per_address_budget(browser, portal_user, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "email": "1/hour"},
    }
    assert browser.post("/password/forgot", {"email": PORTAL_USER_EMAIL}).status_code == 200

    throttled = browser.post("/login/email", {"email": PORTAL_USER_EMAIL})

    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0
    assert "Too many e-mails were asked for this address" in throttled.content.decode()
