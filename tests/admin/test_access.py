"""Who may log in to /admin/: org admins and superusers; never plain members or portal-only users."""

import pytest
from django.test import Client

from accounts.models import User
from tests.conftest import MAIN_HOST, OPERATOR_PASSWORD, PortalUserLogin, web_client
from tests.factories import DEFAULT_PASSWORD

STAFF_ERROR = "Please enter the correct email and password for a staff account"


def _login(email: str, password: str = DEFAULT_PASSWORD) -> tuple[Client, object]:
    client = Client(HTTP_HOST=MAIN_HOST)
    response = client.post("/admin/login/?next=/admin/", {"username": email, "password": password})
    return client, response


def test_an_org_admin_logs_in_without_is_staff(owner: User) -> None:
    assert not owner.is_staff and not owner.is_superuser

    client, response = _login(owner.email)

    assert response.status_code == 302 and response.url == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_a_superuser_logs_in(operator: User) -> None:
    client, response = _login(operator.email, OPERATOR_PASSWORD)

    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize("who", ["member", "portal_user"])
def test_it_refuses_a_plain_member_and_a_portal_user_like_a_wrong_password(
    who: str, request: pytest.FixtureRequest
) -> None:
    persona = request.getfixturevalue(who)
    user = persona.account if isinstance(persona, PortalUserLogin) else persona

    client, response = _login(user.email)

    assert response.status_code == 200
    assert STAFF_ERROR in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302


def test_it_refuses_an_inactive_org_admin(owner: User) -> None:
    owner.is_active = False
    owner.save(update_fields=["is_active"])

    _, response = _login(owner.email)

    assert response.status_code == 200 and STAFF_ERROR in response.content.decode()


def test_a_logged_in_member_is_sent_to_the_login_page(member: User) -> None:
    response = web_client(member).get("/admin/portals/portal/")

    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")


def test_an_anonymous_visitor_is_sent_to_the_login_page(db: None) -> None:
    response = web_client().get("/admin/")

    assert response.status_code == 302 and response.url.startswith("/admin/login/")


def test_the_index_names_the_apps_for_people(owner_web: Client) -> None:
    page = owner_web.get("/admin/").content.decode()

    assert "Your organizations and portals" in page
    assert page.index(">Portals<") < page.index(">Organizations<")
    assert ">Members<" in page and ">Domains<" in page
