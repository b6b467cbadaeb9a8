from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import Organization, OrgMembership
from portals.management.commands.quickstart import DEMO_ADMIN_EMAIL, DEMO_ORG_NAME

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
