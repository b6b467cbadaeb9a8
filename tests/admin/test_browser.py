"""The admin as a person uses it: Debian's Chromium, headless, driven by Selenium against the live server.

The live server makes these tests transactional: pytest-django flushes the public tables after each
one, which would take with it the rows that the session fixtures committed (tests/conftest.py: the
session organization and admin, the spare pool, the test portal) while their schemas stay. The
module fixture below puts those rows back, with the same keys, so the rest of the suite and the
next `--reuse-db` run find the database as this module found it.
"""

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core import serializers
from django.db import connection, transaction
from django_tenants.utils import get_public_schema_name

from accounts.models import Organization, OrgMembership, User
from accounts.services import organization_create
from portals.models import Domain, Portal
from portals.provisioning import schema_drop, spare_pool_refill
from portals.services import portal_delete

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1440,1000",
]  # fmt: skip
PASSWORD = "browser test password 1"
SLUG = "browser-portal"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="needs Debian's Chromium and its driver: apt-get install chromium chromium-driver",
    ),
]

webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium: pip install -r requirements.txt")
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

# Rows committed outside any test's transaction, in dependency order.
_COMMITTED_MODELS: list[type[Any]] = [User, Organization, OrgMembership, Portal, Domain]


def _committed_rows() -> list[Any]:
    public = get_public_schema_name()
    rows: list[Any] = []
    for model in _COMMITTED_MODELS:
        queryset = model.objects.order_by("pk")
        if model is Portal:
            queryset = queryset.exclude(schema_name=public)  # post_migrate re-creates it after the flush
        if model is Domain:
            queryset = queryset.exclude(tenant__schema_name=public)
        rows += list(queryset)
    return rows


def _portal_schemas() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'portal\\_%' OR nspname LIKE 'spare\\_%'")
        return {row[0] for row in cursor.fetchall()}


def _restore(snapshot: str) -> None:
    """Put the snapshot's rows back; a portal row whose schema is gone (a spare this module claimed) is
    left out, a schema left without a row (the spare refilled meanwhile) is dropped, and the pool topped up."""
    connection.set_schema_to_public()
    schemas = _portal_schemas()
    rows = list(serializers.deserialize("json", snapshot))
    kept = {row.object.pk for row in rows if isinstance(row.object, Portal) and row.object.schema_name in schemas}
    with transaction.atomic():
        for row in rows:
            if isinstance(row.object, Portal) and row.object.pk not in kept:
                continue
            if isinstance(row.object, Domain) and row.object.tenant_id not in kept:
                continue
            row.save()
        for schema in schemas - set(Portal.objects.values_list("schema_name", flat=True)):
            schema_drop(schema_name=schema)
    spare_pool_refill(size=3)


@pytest.fixture(scope="module", autouse=True)
def _committed_rows_restored(spare_pool: None, django_db_blocker: Any) -> Iterator[None]:
    # Module scope: set up before, and torn down after, the flush at the end of each transactional test.
    with django_db_blocker.unblock():
        snapshot = serializers.serialize("json", _committed_rows())
        last_job = _last_job_id()
    yield
    with django_db_blocker.unblock():
        _restore(snapshot)
        # The live server's creates queued refills, committed; the flush leaves procrastinate's tables alone.
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM procrastinate_jobs WHERE id > %s", [last_job])


def _last_job_id() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM procrastinate_jobs")
        return cursor.fetchone()[0]


def _detached(element: Any) -> bool:
    """Whether `element` belongs to a page that has gone. Chromium answers either "stale element" or, while
    the next page loads, "node does not belong to the document": both are WebDriverExceptions."""
    try:
        element.is_enabled()
    except WebDriverException:
        return True
    return False


class Browser:
    """A Chromium window that saves a numbered screenshot at each step."""

    def __init__(self, driver: WebDriver, base_url: str, folder: Path) -> None:
        self.driver, self.base_url, self.folder = driver, base_url, folder
        self.step = 0

    def shot(self, name: str) -> None:
        self.step += 1
        self.driver.save_screenshot(str(self.folder / f"{self.step:02}-{name}.png"))

    def get(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def find(self, css: str) -> Any:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def click_and_wait(self, element: Any) -> None:
        """Click something that loads a new page, and wait until it has."""
        page = self.driver.find_element(By.TAG_NAME, "html")
        element.click()
        wait = WebDriverWait(self.driver, 20)
        wait.until(lambda driver: _detached(page))
        wait.until(lambda driver: driver.execute_script("return document.readyState") == "complete")

    def text(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "body").text

    def messages(self) -> str:
        return " | ".join(element.text for element in self.driver.find_elements(By.CSS_SELECTOR, "ul.messagelist li"))

    def log_in(self, email: str) -> None:
        self.get("/admin/login/")
        self.find("#id_username").send_keys(email)
        self.find("#id_password").send_keys(PASSWORD)
        self.click_and_wait(self.find("input[type=submit]"))
        assert self.driver.find_elements(By.ID, "logout-form"), self.text()

    def log_out(self) -> None:
        self.get("/admin/")  # the last page may have been a 404, which has no logout button
        self.click_and_wait(self.find("#logout-form button"))


@pytest.fixture
def browser(live_server: Any, tmp_path: Path) -> Iterator[Browser]:
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    screenshots = tmp_path / "screenshots"
    screenshots.mkdir()
    profile = tmp_path / "chromium-profile"
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    print(f"screenshots: {screenshots}")  # shown when the test fails; the folder is kept
    try:
        yield Browser(driver, live_server.url.replace("127.0.0.1", "localhost"), screenshots)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


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
