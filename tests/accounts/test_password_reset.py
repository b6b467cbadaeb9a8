"""Org admins' forgotten password on the main host: Django's admin reset views, the e-mail as a job (issue 16)."""

import re

import pytest
from django.core import mail
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from accounts.models import User
from tests.conftest import MAIN_HOST, web_client
from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.jobs import queued_jobs, run_jobs

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "saffron lighthouse quartz 5521"
LINK = re.compile(r"http://(?P<host>[^/\s]+)(?P<path>/password/reset/\S+)")


def _reset_link(email: str) -> str:
    client = web_client()
    response = client.post("/admin/password_reset/", {"email": email})
    assert (response.status_code, response["Location"]) == (302, "/admin/password_reset/done/")
    [job] = queued_jobs(task_name="deliver_account_password_reset")
    assert set(job.task_kwargs) == {"user_id", "host"}  # no token waits in the queue
    run_jobs()
    found = LINK.search(mail.outbox[-1].body)
    assert found is not None and found.group("host") == f"{MAIN_HOST}:8000"  # PORTAL_URL_PORT
    return found.group("path")


def test_the_admin_login_offers_the_reset(client):
    assert b'href="/admin/password_reset/"' in client.get("/admin/login/", HTTP_HOST=MAIN_HOST).content


def test_an_org_admin_resets_the_password_by_mail_and_every_other_sign_in_ends(owner, api_client):
    login = api_client.post("/v1/auth/token", {"email": owner.email, "password": DEFAULT_PASSWORD}, format="json")
    path = _reset_link(owner.email)
    client = web_client()

    form = client.get(path, follow=True)
    assert form.status_code == 200 and b'name="new_password1"' in form.content
    done = client.post(
        form.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, follow=True
    )

    assert done.redirect_chain[-1][0] == "/admin/reset/done/"
    assert User.objects.get(id=owner.id).check_password(NEW_PASSWORD)
    assert not OutstandingToken.objects.filter(user=owner, blacklistedtoken__isnull=True).exists()
    refresh = api_client.post("/v1/auth/token/refresh", {"refresh": login.json()["refresh"]}, format="json")
    assert refresh.status_code == 401
    used = web_client().get(path, follow=True)
    assert b"The password reset link was invalid" in used.content


@pytest.mark.parametrize("who", ["unknown", "portal-user-only", "inactive"])
def test_no_mail_for_anyone_but_an_active_org_admin(owner, make_org_user, who):
    email = "nobody@example.com"
    if who == "portal-user-only":
        email = UserFactory().email
    elif who == "inactive":
        User.objects.filter(id=owner.id).update(is_active=False)
        email = owner.email

    response = web_client().post("/admin/password_reset/", {"email": email})
    run_jobs()

    assert (response.status_code, response["Location"]) == (302, "/admin/password_reset/done/")
    assert mail.outbox == []


def test_the_reset_page_keeps_to_the_addresss_e_mail_budget(owner, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "email": "2/hour"},
    }
    for _ in range(4):
        response = web_client().post("/admin/password_reset/", {"email": owner.email})
        assert (response.status_code, response["Location"]) == (302, "/admin/password_reset/done/")

    assert len(queued_jobs(task_name="deliver_account_password_reset")) == 2
