"""Driving Debian's Chromium, headless, through Selenium against the live server: what the browser tests share.

The live server makes these tests transactional: pytest-django flushes the public tables after each
one, which would take with it the rows that the session fixtures committed (tests/conftest.py: the
session organization and admin, the spare pool, the test portal) while their schemas stay. A browser
test module imports `committed_rows_restored`, an autouse module fixture: it puts those rows back, with
the same keys, so the rest of the suite and the next `--reuse-db` run find the database as it was.
"""

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.core import serializers
from django.db import connection, transaction
from django_tenants.utils import get_public_schema_name

from accounts.models import Organization, OrgMembership, User
from portals.models import Domain, Portal
from portals.provisioning import schema_drop, spare_pool_refill

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1440,1000",
]  # fmt: skip
PASSWORD = "browser test password 1"

BROWSER_MARKS = [
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
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

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


@pytest.fixture(scope="module", autouse=True)  # in each module that imports it
def committed_rows_restored(spare_pool: None, django_db_blocker: Any) -> Iterator[None]:
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

    def __init__(self, driver: WebDriver, base_url: str, folder: Path, prefix: str = "") -> None:
        self.driver, self.base_url, self.folder, self.prefix = driver, base_url, folder, prefix
        self.step = 0

    def shot(self, name: str) -> None:
        self.step += 1
        self.driver.save_screenshot(str(self.folder / f"{self.prefix}{self.step:02}-{name}.png"))

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


@contextmanager
def chromium(profile: Path) -> Iterator[WebDriver]:
    """A headless Chromium with a profile of its own (its own cookies: a browser of its own)."""
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = tmp_path / "screenshots"
    folder.mkdir()
    print(f"screenshots: {folder}")  # shown when the test fails (or with -s); the folder is kept
    return folder


@pytest.fixture
def browser(live_server: Any, tmp_path: Path, screenshots: Path) -> Iterator[Browser]:
    with chromium(tmp_path / "chromium-profile") as driver:
        yield Browser(driver, live_server.url.replace("127.0.0.1", "localhost"), screenshots)
