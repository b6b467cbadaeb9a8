"""A portal's people as they sign in (issue 16): Debian's Chromium, headless, against the live server, with
the e-mails going through the real SMTP test server. Screenshots of every page go to the test's folder."""

import time
from pathlib import Path
from typing import Any

from django.db import connection
from django_tenants.utils import tenant_context

from accounts.services import organization_create
from customer_portal.invite_rows import InviteEntry
from customer_portal.services import portal_users_invite
from portals.models import Portal
from portals.services import portal_delete
from tests.browser import BROWSER_MARKS, Browser, chromium, committed_rows_restored, screenshots
from tests.conftest import mailed_code, mailed_link, make_portal
from tests.jobs import run_jobs
from tests.smtp import SmtpServer

__all__ = ["committed_rows_restored", "screenshots"]  # fixtures, found here by name (the first is autouse)

pytestmark = BROWSER_MARKS

from selenium.webdriver.common.by import By  # noqa: E402  # after the skip marks: selenium may be missing

SLUG = "signin-browser"
EMAIL = "ann@example.com"
FIRST_PASSWORD = "first browser password 31"
NEW_PASSWORD = "second browser password 47"


def _mailed(smtp: SmtpServer) -> str:
    """Run the queued e-mail jobs (committed: the live server wrote them) and return the newest message's text."""
    before = len(smtp.messages)
    run_jobs()
    assert len(smtp.messages) == before + 1, [m.subject for m in smtp.messages]
    return smtp.messages[-1].text()


def _path(text: str) -> str:
    return mailed_link(text).path


def _delete_leftovers() -> None:
    connection.set_schema_to_public()
    for portal in Portal.objects.filter(slug=SLUG):
        portal_delete(portal=portal)


def test_a_person_accepts_signs_out_resets_the_password_signs_in_by_code_and_ends_the_other_browser(
    live_server: Any, smtp: SmtpServer, settings: Any, tmp_path: Path, screenshots: Path
) -> None:
    started = time.monotonic()
    settings.PORTAL_URL_PORT = str(live_server.url.rsplit(":", 1)[1])  # e-mailed links reach the live server
    _, owner, _ = organization_create(name="Signin Browsers", admin_email="owner@signin-browsers.test")
    portal = make_portal(owner, name="Signin Browser", slug=SLUG)
    try:
        with chromium(tmp_path / "first") as first, chromium(tmp_path / "second") as second:
            base = f"http://{portal.default_domain}:{settings.PORTAL_URL_PORT}"
            _scenario(portal, smtp, Browser(first, base, screenshots), Browser(second, base, screenshots, "b-"))
    finally:
        _delete_leftovers()
    print(f"portal sign-in browser scenario: {time.monotonic() - started:.1f} s")


def _scenario(portal: Portal, smtp: SmtpServer, browser: Browser, other: Browser) -> None:
    # Accept the invitation: that signs Ann in.
    with tenant_context(portal):
        portal_users_invite(portal=portal, entries=[InviteEntry(email=EMAIL, name="Ann")], invited_by=None)
    browser.get(_path(_mailed(smtp)))
    assert "Join Signin Browser" in browser.text()
    browser.find("#id_name").clear()
    browser.find("#id_name").send_keys("Ann Example")
    browser.find("#id_password").send_keys(FIRST_PASSWORD)
    browser.find("#id_password_confirm").send_keys(FIRST_PASSWORD)
    browser.shot("invitation")
    browser.click_and_wait(browser.find("main button[type=submit]"))
    assert "Signed in as Ann Example" in browser.text(), browser.text()
    browser.shot("accepted-signed-in")

    # Sign out.
    browser.click_and_wait(browser.find("main form[action='/logout'] button"))
    assert "You are signed out." in browser.text()
    browser.shot("signed-out-login")

    # A wrong password, then "forgot password": the reset e-mail, a new password, and sign in with it.
    browser.find("#id_email").send_keys(EMAIL)
    browser.find("#id_password").send_keys("not the password")
    browser.click_and_wait(browser.find("main button[type=submit]"))
    assert "do not match an account" in browser.text()
    browser.shot("login-refused")
    browser.click_and_wait(browser.driver.find_element(By.LINK_TEXT, "Forgot your password?"))
    browser.find("#id_email").send_keys(EMAIL)
    browser.shot("forgot")
    browser.click_and_wait(browser.find("main button[type=submit]"))
    assert "If this address has an account here, we sent it an e-mail" in browser.text()
    browser.shot("forgot-sent")
    reset_path = _path(_mailed(smtp))
    assert reset_path.startswith("/password/reset/")
    browser.get(reset_path)
    browser.find("#id_password").send_keys(NEW_PASSWORD)
    browser.find("#id_password_confirm").send_keys(NEW_PASSWORD)
    browser.shot("reset")
    browser.click_and_wait(browser.find("main button[type=submit]"))
    assert "Your password is changed" in browser.text()
    browser.shot("reset-done-login")
    browser.find("#id_email").send_keys(EMAIL)
    browser.find("#id_password").send_keys(NEW_PASSWORD)
    browser.click_and_wait(browser.find("main button[type=submit]"))
    assert "Signed in as Ann Example" in browser.text()
    browser.shot("signed-in-with-new-password")
    browser.get(reset_path)  # used: the same page as any link that is not live
    assert "Link not valid" in browser.text()
    browser.shot("link-invalid")

    # Signed out again, sign in by the e-mailed code.
    browser.click_and_wait(browser.find("nav form[action='/logout'] button"))
    browser.click_and_wait(browser.driver.find_element(By.LINK_TEXT, "E-mail me a sign-in link or code"))
    browser.find("#id_email").send_keys(EMAIL)
    browser.shot("login-email")
    browser.click_and_wait(browser.find("main button[type=submit]"))
    assert "Enter the code" in browser.text()
    browser.shot("login-email-sent")
    browser.find("#id_code").send_keys(mailed_code(_mailed(smtp)))
    browser.click_and_wait(browser.find("main button[type=submit]"))
    assert "Signed in as Ann Example" in browser.text()
    browser.shot("signed-in-by-code")

    # A second browser signs in by the e-mailed link (its page only shows a button), then a password.
    other.get("/login/email")
    other.find("#id_email").send_keys(EMAIL)
    other.click_and_wait(other.find("main button[type=submit]"))
    link_path = _path(_mailed(smtp))
    other.get(link_path)
    assert "Press the button" in other.text()
    other.shot("login-email-confirm")
    other.click_and_wait(other.find("main button[type=submit]"))
    assert "Signed in as Ann Example" in other.text()
    other.shot("signed-in-by-link")
    other.get("/login/code")
    other.shot("login-code")

    # The first browser's account page lists both, and ends the other one.
    browser.get("/account")
    rows = browser.driver.find_elements(By.CSS_SELECTOR, "table.sessions tbody tr")
    assert len(rows) == 2 and "This browser" in browser.text()
    browser.shot("account")
    browser.driver.execute_script(
        "document.getElementById('sessions-title').scrollIntoView()"
    )  # the test's, not the page's
    browser.shot("account-sessions")
    browser.click_and_wait(browser.find("#end-others button"))
    assert "Every other session has ended." in browser.text()
    assert len(browser.driver.find_elements(By.CSS_SELECTOR, "table.sessions tbody tr")) == 1
    browser.driver.execute_script("document.getElementById('sessions-title').scrollIntoView()")
    browser.shot("account-others-ended")

    # The second browser, still holding its cookie, is signed out at its next request.
    other.get("/")
    assert "Signed in as" not in other.text() and "Sign in" in other.text()
    other.shot("signed-out-by-the-other")
    other.get("/account")
    assert other.driver.current_url.endswith("/login?next=%2Faccount")
    other.shot("account-needs-sign-in")
