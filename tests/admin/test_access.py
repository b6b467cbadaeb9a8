"""Who may log in to /admin/: org admins and superusers; never plain members or portal-only users."""

import pytest
from django.test import Client

from accounts.models import User
from tests.admin.conftest import web_client
from tests.conftest import MAIN_HOST
from tests.factories import DEFAULT_PASSWORD

STAFF_ERROR = "Please enter the correct email and password for a staff account"


def _login(email: str, password: str = DEFAULT_PASSWORD) -> tuple[Client, object]:
    client = Client(HTTP_HOST=MAIN_HOST)
    response = client.post("/admin/login/?next=/admin/", {"username": email, "password": password})
    return client, response


def test_an_org_admin_logs_in_without_is_staff(org_admin: User) -> None:
    assert not org_admin.is_staff and not org_admin.is_superuser

    client, response = _login(org_admin.email)

    assert response.status_code == 302 and response.url == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_a_superuser_logs_in(superuser: User) -> None:
    client, response = _login(superuser.email, "operator password 1")

    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize("who", ["org_member", "portal_only_user"])
def test_it_refuses_a_plain_member_and_a_portal_user_like_a_wrong_password(
    who: str, request: pytest.FixtureRequest
) -> None:
    user = request.getfixturevalue(who)

    client, response = _login(user.email)

    assert response.status_code == 200
    assert STAFF_ERROR in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302


def test_it_refuses_an_inactive_org_admin(org_admin: User) -> None:
    org_admin.is_active = False
    org_admin.save(update_fields=["is_active"])

    _, response = _login(org_admin.email)

    assert response.status_code == 200 and STAFF_ERROR in response.content.decode()


def test_a_logged_in_member_is_sent_to_the_login_page(org_member: User) -> None:
    response = web_client(org_member).get("/admin/portals/portal/")

    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")


def test_an_anonymous_visitor_is_sent_to_the_login_page(db: None) -> None:
    response = web_client().get("/admin/")

    assert response.status_code == 302 and response.url.startswith("/admin/login/")


def test_the_index_names_the_apps_for_people(admin_web: Client) -> None:
    page = admin_web.get("/admin/").content.decode()

    assert "Your organizations and portals" in page
    assert page.index(">Portals<") < page.index(">Organizations<")
    assert ">Members<" in page and ">Domains<" in page
