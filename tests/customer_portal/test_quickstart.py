import http.client
import re
from io import StringIO
from urllib.parse import urlsplit

import psutil
import pytest
from django.core import mail
from django.core.management import call_command

from accounts.models import Organization, OrgMembership
from customer_portal.management.commands.quickstart import DEMO_ADMIN_EMAIL, DEMO_GUEST_EMAIL, DEMO_ORG_NAME
from portals.models import Portal
from tests.conftest import bearer_client
from tests.jobs import run_jobs
from tests.live import live_site, wait_until
from tests.smtp import free_port

pytestmark = pytest.mark.django_db


def _get(port: int, url: str) -> int | None:
    """GET `url` (its host as the Host header) from the server on 127.0.0.1:port; None while it is not up."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", parts.path or "/", headers={"Host": parts.hostname or "localhost"})
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def _healthz(port: int) -> int | None:
    return _get(port, "http://localhost/healthz")


def _quickstart() -> str:
    out = StringIO()
    call_command("quickstart", "--no-serve", stdout=out)
    return out.getvalue()


def test_quickstart_creates_a_demo_admin_that_can_log_in(api_client, settings, tmp_path):
    settings.DATA_DIR = tmp_path

    output = _quickstart()

    password = (tmp_path / "demo_admin_password").read_text()
    assert f"{DEMO_ADMIN_EMAIL} / {password}" in output
    assert "curl" in output and "/api/docs/" in output
    membership = OrgMembership.objects.get(user__email=DEMO_ADMIN_EMAIL)
    assert membership.role == OrgMembership.Role.ADMIN
    token = api_client.post("/v1/auth/token", {"email": DEMO_ADMIN_EMAIL, "password": password}, format="json")
    assert token.status_code == 200


def test_a_second_quickstart_changes_nothing_and_says_so(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    _quickstart()

    output = _quickstart()

    assert "already exists; nothing changed" in output
    assert Organization.objects.filter(name=DEMO_ORG_NAME).count() == 1
    assert (tmp_path / "demo_admin_password").read_text() in output


def test_quickstart_creates_a_demo_portal_the_demo_admin_can_list(settings, tmp_path):
    settings.DATA_DIR = tmp_path

    output = _quickstart()

    portal = Portal.objects.get(slug="demo")
    assert portal.name == "Demo Portal"
    assert portal.organization == Organization.objects.get(name=DEMO_ORG_NAME)
    assert "demo.localhost" in output
    assert 'curl http://127.0.0.1:8000/v1/portal -H "Authorization: Bearer <access>"' in output
    admin = OrgMembership.objects.get(user__email=DEMO_ADMIN_EMAIL).user
    listed = bearer_client(admin).get("/v1/portal")
    assert [item["slug"] for item in listed.json()] == ["demo"]


def test_quickstart_fills_the_spare_pool_before_it_takes_one(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    Portal.objects.filter(is_spare=True).delete()  # rows only; the rollback brings them back

    _quickstart()

    assert Portal.objects.filter(is_spare=True).count() == settings.PORTAL_SPARE_POOL_SIZE - 1
    demo = Portal.objects.get(slug="demo")
    assert demo.schema_name == f"portal_{demo.id.hex}"


def test_quickstart_keeps_an_existing_demo_portal(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    _quickstart()
    portal = Portal.objects.get(slug="demo")

    output = _quickstart()

    assert "Demo Portal (demo) already exists." in output
    assert Portal.objects.filter(organization__name=DEMO_ORG_NAME).get() == portal


def test_quickstart_prints_the_portal_url_with_the_served_port(settings, tmp_path):
    settings.DATA_DIR = tmp_path

    out = StringIO()
    call_command("quickstart", "--no-serve", "--addrport", "0.0.0.0:9000", stdout=out)

    assert "http://demo.localhost:9000/" in out.getvalue()
    assert "curl http://0.0.0.0:9000/v1/portal" in out.getvalue()


@pytest.mark.slow
def test_quickstart_serves_with_a_worker_that_delivers_the_demo_invitation_and_dies_with_it(tmp_path):
    with live_site(tmp_path, EMAIL_URL="consolemail://") as site:
        port = free_port()  # not 8000: the e-mailed link must follow --addrport
        quickstart = site.start("quickstart", "--addrport", f"127.0.0.1:{port}", log="quickstart")
        try:
            wait_until(lambda: _healthz(port) == 200, timeout=60, what="/healthz 200", process=quickstart)
            [worker] = [child for child in psutil.Process(quickstart.pid).children() if "worker" in child.cmdline()]
            assert f"Background worker started (pid {worker.pid})" in quickstart.log()

            # The invitation quickstart queued, printed by the console backend (the worker's output is quickstart's).
            link = wait_until(
                lambda: re.search(rf"http://demo\.localhost:{port}/invite/\S+", quickstart.log()),
                timeout=60,
                what="the demo invitation's link",
                process=quickstart,
            )
            assert "To: guest@demo.example.com" in quickstart.log()
            assert _get(port, link.group(0)) == 200  # the link works on the port served

            quickstart.popen.kill()  # SIGKILL: no chance to stop its child itself
            quickstart.wait()

            # Linux tells the worker (PR_SET_PDEATHSIG): it stops as on any SIGTERM.
            wait_until(lambda: "Stopped worker on all queues" in quickstart.log(), timeout=90, what="the worker's stop")
            wait_until(lambda: not worker.is_running(), timeout=10, what="the worker's exit")
            assert "Stop requested" in quickstart.log()
        finally:
            quickstart.stop()


def test_quickstart_invites_a_demo_guest_once_whose_email_a_worker_delivers(settings, tmp_path):
    settings.DATA_DIR = tmp_path

    first = _quickstart()
    second = _quickstart()

    assert f"Invited {DEMO_GUEST_EMAIL}" in first and "Invited" not in second
    assert "`python manage.py worker` delivers it" in first  # --no-serve: no worker beside it
    assert [run.status for run in run_jobs(queues=["email"])] == ["succeeded"]  # one invitation, not two
    [message] = mail.outbox
    assert message.to == [DEMO_GUEST_EMAIL]
    assert "http://demo.localhost:8000/invite/" in message.body
