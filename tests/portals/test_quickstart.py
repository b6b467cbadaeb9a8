from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import Organization, OrgMembership
from portals.management.commands.quickstart import DEMO_ADMIN_EMAIL, DEMO_ORG_NAME
from portals.models import Portal
from tests.conftest import bearer_client

pytestmark = pytest.mark.django_db


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
