"""The admin as a person uses it: Debian's Chromium, headless, driven by Selenium against the live server.

The live server makes these tests transactional: pytest-django flushes the public tables after each
one, which would take with it the rows that the session fixtures committed (tests/conftest.py: the
session organization and admin, the spare pool, the test portal) while their schemas stay. The
module fixture below puts those rows back, with the same keys, so the rest of the suite and the
next `--reuse-db` run find the database as this module found it.
"""

import time

from django.db import connection

from accounts.models import Organization, User
from accounts.services import organization_create
from portals.models import Portal
from portals.services import portal_delete
from tests.browser import BROWSER_MARKS, PASSWORD, Browser, browser, committed_rows_restored, screenshots

# Fixtures, found here by name; committed_rows_restored is autouse (see tests/browser.py).
__all__ = ["browser", "committed_rows_restored", "screenshots"]

SLUG = "browser-portal"
pytestmark = BROWSER_MARKS

from selenium.webdriver.common.by import By  # noqa: E402  # after the skip marks: selenium may be missing
from selenium.webdriver.support.ui import Select  # noqa: E402


def _delete_leftovers() -> None:
    """A failed run must not leave its portal (and schema) behind for the rest of the suite."""
    connection.set_schema_to_public()
    for portal in Portal.objects.filter(slug=SLUG):
        portal_delete(portal=portal)


def test_the_owner_runs_a_portal_and_an_outsider_sees_none_of_it(browser: Browser) -> None:
    started = time.monotonic()
    acme, owner, _ = organization_create(
        name="Acme Browsers", admin_email="owner@acme-browsers.test", admin_password=PASSWORD
    )
    organization_create(name="Globex Browsers", admin_email="outsider@globex-browsers.test", admin_password=PASSWORD)
    try:
        _scenario(browser, acme=acme, owner=owner)
    finally:
        _delete_leftovers()
    print(f"browser scenario: {time.monotonic() - started:.1f} s")


def _scenario(browser: Browser, *, acme: Organization, owner: User) -> None:
    browser.log_in(owner.email)
    assert "Your organizations and portals" in browser.text()
    browser.shot("index")

    # Create a portal.
    browser.get("/admin/portals/portal/add/")
    assert Select(browser.find("#id_organization")).first_selected_option.text == "Acme Browsers"
    browser.find("#id_name").send_keys("Browser Portal")
    browser.find("#id_slug").send_keys(SLUG)
    browser.shot("add-portal")
    browser.click_and_wait(browser.find("input[name=_save]"))
    assert "was added successfully" in browser.messages(), browser.text()
    assert f"{SLUG}.localhost" in browser.text()
    browser.shot("portal-list")
    portal = Portal.objects.get(slug=SLUG)
    assert portal.organization_id == acme.id

    # Invite three people by pasting their e-mails (from the portal's change page, as a person would).
    browser.click_and_wait(browser.driver.find_element(By.LINK_TEXT, "Browser Portal"))
    browser.click_and_wait(browser.find(".object-tools a[href$='/users/']"))
    browser.click_and_wait(browser.find("ul.portal-tabs a[href$='/invite/']"))
    browser.find("#id_emails").send_keys("ann@example.com\nbob@example.com, Bob Stone\ncid@example.com")
    browser.shot("invite")
    browser.click_and_wait(browser.find("input[type=submit][value=Invite]"))
    assert "Invited 3 people: 3 invited" in browser.messages(), browser.text()
    for email in ("ann@example.com", "bob@example.com", "cid@example.com"):
        assert email in browser.text()
    browser.shot("users-invited")

    # Turn a feature on.
    browser.click_and_wait(browser.find("ul.portal-tabs a[href$='/features/']"))
    browser.click_and_wait(browser.find("#feature-chat button"))
    assert "Turned on Chat." in browser.messages()
    assert "On" in browser.find("#feature-chat .field-enabled").text
    browser.shot("feature-on")

    # Revoke one user.
    browser.click_and_wait(browser.find("ul.portal-tabs a[href$='/users/']"))
    browser.find("input.action-select[aria-label='Select bob@example.com']").click()
    Select(browser.find("select[name=action]")).select_by_value("revoke")
    browser.shot("revoke-selected")
    browser.click_and_wait(browser.find("button[name=index]"))
    assert "Revoked access of 1 person: bob@example.com." in browser.messages()
    bob_row = browser.driver.find_element(By.XPATH, "//tr[th[text()='bob@example.com']]")
    assert "Revoked" in bob_row.text
    browser.shot("user-revoked")

    # The outsider (an admin of another organization) sees none of it, and cannot reach it by URL.
    browser.log_out()
    _outsider_sees_nothing(browser, portal=portal, acme=acme, owner=owner, when="live")

    # Delete the portal through its confirmation page.
    browser.log_out()
    browser.log_in(owner.email)
    browser.get(f"/admin/portals/portal/{portal.pk}/change/")
    browser.click_and_wait(browser.find("a.deletelink"))
    assert "all of its data, for good" in browser.text()
    assert portal.schema_name in browser.text()
    browser.shot("delete-confirmation")
    browser.click_and_wait(browser.find("input[type=submit][value='Yes, drop the portal and all its data']"))
    assert "was deleted successfully" in browser.messages()
    assert not Portal.objects.filter(slug=SLUG).exists()
    browser.shot("deleted")

    browser.log_out()
    _outsider_sees_nothing(browser, portal=portal, acme=acme, owner=owner, when="deleted")


def _outsider_sees_nothing(browser: Browser, *, portal: Portal, acme: Organization, owner: User, when: str) -> None:
    browser.log_in("outsider@globex-browsers.test")
    browser.get("/admin/portals/portal/")
    assert "Browser Portal" not in browser.text() and SLUG not in browser.text()
    assert "0 portals" in browser.text()
    browser.shot(f"foreign-portals-{when}")
    browser.get("/admin/accounts/organization/")
    assert acme.name not in browser.text()
    browser.get("/admin/accounts/orgmembership/")
    assert owner.email not in browser.text()
    browser.get("/admin/portals/domain/")
    assert SLUG not in browser.text()
    browser.shot(f"foreign-domains-{when}")
    for page in ("users", "features", "change"):
        browser.get(f"/admin/portals/portal/{portal.pk}/{page}/")
        assert "Not found." in browser.text() and "bob@example.com" not in browser.text()
    browser.shot(f"foreign-portal-url-{when}")
