"""/v1/customer-portal: which portal, who may call what, and portal-scoped tokens."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from customer_portal.models import PortalSession, PortalUser
from customer_portal.services import InviteEntry, portal_session_open, portal_session_touch, portal_users_invite
from customer_portal.tokens import portal_token_pair
from tests.conftest import bearer_client, make_portal
from tests.customer_portal.conftest import portal_login

pytestmark = pytest.mark.django_db

ADMIN_ENDPOINTS = [
    ("patch", "/v1/customer-portal/config"),
    ("get", "/v1/customer-portal/users"),
    ("get", "/v1/customer-portal/users/00000000-0000-0000-0000-000000000000"),
    ("delete", "/v1/customer-portal/users/00000000-0000-0000-0000-000000000000"),
    ("delete", "/v1/customer-portal/users/00000000-0000-0000-0000-000000000000/access"),
    ("post", "/v1/customer-portal/users/invite"),
    ("get", "/v1/customer-portal/invitations"),
    ("post", "/v1/customer-portal/invitations"),
    ("post", "/v1/customer-portal/invitations/00000000-0000-0000-0000-000000000000/resend"),
    ("delete", "/v1/customer-portal/invitations/00000000-0000-0000-0000-000000000000"),
    ("get", "/v1/customer-portal/stats"),
    ("get", "/v1/customer-portal/sessions"),
    ("delete", "/v1/customer-portal/sessions/00000000-0000-0000-0000-000000000000"),
    ("patch", "/v1/customer-portal/features/documents/toggle"),
]


def _call(client: APIClient, method: str, path: str, **extra: str):
    return getattr(client, method)(path, {}, format="json", **extra)


def test_anonymous_callers_get_401_everywhere(host):
    anonymous = APIClient(HTTP_HOST=host)
    for method, path in [*ADMIN_ENDPOINTS, ("get", "/v1/customer-portal/config"), ("get", "/v1/customer-portal/me")]:
        response = _call(anonymous, method, path)
        assert response.status_code == 401, (method, path)
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_portal_users_get_403_on_admin_endpoints(portal_user):
    for method, path in ADMIN_ENDPOINTS:
        assert _call(portal_user.client, method, path).status_code == 403, (method, path)


def test_a_foreign_admin_gets_404_on_the_portal_host_and_by_header(host, portal, make_admin):
    foreign = make_admin()
    on_host = bearer_client(foreign, host=host)
    by_header = bearer_client(foreign)
    for method, path in [*ADMIN_ENDPOINTS, ("get", "/v1/customer-portal/config")]:
        for client, extra in ((on_host, {}), (by_header, {"HTTP_X_PORTAL_ID": str(portal.id)})):
            response = _call(client, method, path, **extra)
            assert response.status_code == 404, (method, path, extra)
            assert response.json() == {"detail": "Portal not found."}


def test_the_admin_reaches_every_endpoint_by_host_and_by_header(admin, admin_on_portal, portal):
    by_header = bearer_client(admin)
    for client, extra in ((admin_on_portal, {}), (by_header, {"HTTP_X_PORTAL_ID": str(portal.id)})):
        assert client.get("/v1/customer-portal/config", **extra).status_code == 200
        assert client.get("/v1/customer-portal/users", **extra).status_code == 200
        assert client.get("/v1/customer-portal/stats", **extra).status_code == 200


def test_the_main_host_needs_a_portal_id_header(admin):
    client = bearer_client(admin)

    missing = client.get("/v1/customer-portal/config")
    unknown = client.get("/v1/customer-portal/config", HTTP_X_PORTAL_ID="7d8f5b8e-1111-4222-8333-944455556666")
    malformed = client.get("/v1/customer-portal/config", HTTP_X_PORTAL_ID="'; DROP SCHEMA public;--")

    assert missing.status_code == 404
    assert "X-Portal-ID" in missing.json()["detail"]
    assert unknown.status_code == malformed.status_code == 404
    assert unknown.json() == malformed.json() == {"detail": "Portal not found."}


# Portal login and portal-scoped tokens ---------------------------------------------------------


def test_portal_login_opens_a_session_and_me_shows_it(portal_user, host):
    response = portal_user.client.get("/v1/customer-portal/me", HTTP_USER_AGENT="pytest")

    assert response.status_code == 200
    body = response.json()
    assert body["user"]["id"] == str(portal_user.member.id)
    assert body["user"]["status"] == "active"
    assert body["user"]["last_login_at"] is not None
    assert body["portal"]["domain"] == host
    assert body["session"]["user"] == {"id": str(portal_user.member.id), "email": "member@example.com"}


def test_portal_login_needs_an_active_membership(host, portal, make_portal_user):
    from tests.factories import UserFactory

    UserFactory(email="outsider@example.com")
    revoked = make_portal_user("revoked@example.com")
    with tenant_context(portal):
        PortalUser.objects.filter(id=revoked.member.id).update(status=PortalUser.Status.REVOKED)

    outsider_status, outsider_body = portal_login(host, "outsider@example.com")
    revoked_status, revoked_body = portal_login(host, "revoked@example.com")
    wrong_status, wrong_body = portal_login(host, "nobody@example.com")

    assert outsider_status == revoked_status == wrong_status == 401
    assert outsider_body == revoked_body == wrong_body  # nothing tells a non-member from a wrong password


def test_a_portal_token_is_refused_on_another_portal_and_on_the_api_host(portal_user, admin):
    other = make_portal(admin, name="Other", slug="other")

    on_other_host = APIClient(HTTP_HOST="other.localhost")
    on_other_host.credentials(HTTP_AUTHORIZATION=f"Bearer {portal_user.access}")
    on_api_host = APIClient(HTTP_HOST="localhost")
    on_api_host.credentials(HTTP_AUTHORIZATION=f"Bearer {portal_user.access}")

    assert on_other_host.get("/v1/customer-portal/config").status_code == 401
    assert on_api_host.get("/v1/portal").status_code == 401
    assert on_api_host.get("/v1/customer-portal/config", HTTP_X_PORTAL_ID=str(other.id)).status_code == 401
    refresh = on_other_host.post("/v1/auth/token/refresh", {"refresh": portal_user.refresh}, format="json")
    assert refresh.status_code == 401


def test_refresh_keeps_the_portal_scope(portal_user, host):
    response = APIClient(HTTP_HOST=host).post("/v1/auth/token/refresh", {"refresh": portal_user.refresh}, format="json")
    assert response.status_code == 200
    client = APIClient(HTTP_HOST=host)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")

    assert client.get("/v1/customer-portal/me").status_code == 200


@pytest.mark.parametrize("how", ["logout", "revoke", "end-session", "remove"])
def test_access_and_refresh_tokens_die_at_once(portal_user, admin_on_portal, host, how):
    member_id, session_id = (
        portal_user.member.id,
        portal_user.client.get("/v1/customer-portal/me").json()["session"]["id"],
    )

    if how == "logout":
        response = APIClient(HTTP_HOST=host).post("/v1/auth/logout", {"refresh": portal_user.refresh}, format="json")
    elif how == "revoke":
        response = admin_on_portal.delete(f"/v1/customer-portal/users/{member_id}/access")
        assert response.json()["status"] == "revoked"
    elif how == "end-session":
        response = admin_on_portal.delete(f"/v1/customer-portal/sessions/{session_id}")
    else:
        response = admin_on_portal.delete(f"/v1/customer-portal/users/{member_id}")
    assert response.status_code == 200

    assert portal_user.client.get("/v1/customer-portal/me").status_code == 401
    refresh = APIClient(HTTP_HOST=host).post("/v1/auth/token/refresh", {"refresh": portal_user.refresh}, format="json")
    assert refresh.status_code == 401


@pytest.mark.parametrize("how", ["deactivate-account", "expire", "suspend-membership"])
def test_the_session_check_refuses_at_once(portal, portal_user, how):
    """The one query behind every portal-scoped request: a live session, an active member, an active account."""
    assert portal_user.client.get("/v1/customer-portal/config").status_code == 200

    if how == "deactivate-account":
        portal_user.account.is_active = False
        portal_user.account.save(update_fields=["is_active"])
    with tenant_context(portal):
        if how == "expire":
            PortalSession.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
        elif how == "suspend-membership":  # a status written behind the services' back
            PortalUser.objects.update(status=PortalUser.Status.REVOKED)

    response = portal_user.client.get("/v1/customer-portal/config")
    assert response.status_code == 401
    assert response.json()["detail"] == "The portal session has ended."


def test_a_session_id_works_only_with_the_account_it_was_opened_for(portal, portal_user, make_portal_user, host):
    other = make_portal_user(email="other@example.com")
    with tenant_context(portal):
        session = PortalSession.objects.get(portal_user=portal_user.member)
    mixed = portal_token_pair(user=other.account, portal=portal, session=session)["access"]

    response = APIClient(HTTP_HOST=host, HTTP_AUTHORIZATION=f"Bearer {mixed}").get("/v1/customer-portal/me")

    assert response.status_code == 401


def test_the_session_check_loads_the_member_and_session_as_the_orm_does(portal, portal_user):
    with tenant_context(portal):
        expected = PortalSession.objects.select_related("portal_user").get()
        session = portal_session_touch(session_id=str(expected.id), global_user_id=portal_user.account.id)
    assert session is not None
    for model_instance, loaded in ((expected, session), (expected.portal_user, session.portal_user)):
        for model_field in type(model_instance)._meta.concrete_fields:
            assert getattr(loaded, model_field.attname) == getattr(model_instance, model_field.attname), model_field
            assert type(getattr(loaded, model_field.attname)) is type(getattr(model_instance, model_field.attname))


def test_a_token_kept_verified_by_the_worker_still_expires(portal_user, host):
    token = AccessToken(portal_user.access)
    token.set_exp(lifetime=timedelta(seconds=2))
    client = APIClient(HTTP_HOST=host, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/v1/customer-portal/config").status_code == 200
    assert client.get("/v1/customer-portal/config").status_code == 200  # the kept one

    time.sleep(max(0.0, token["exp"] - time.time()) + 0.05)
    response = client.get("/v1/customer-portal/config")

    assert response.status_code == 401
    assert response.json()["detail"] == "Given token not valid for any token type"


def test_the_prepared_session_check_follows_the_schema(admin, portal, portal_user):
    """The check is prepared once per connection; each portal's tables are still its own."""
    other = make_portal(admin, name="Other")
    with tenant_context(other):
        portal_users_invite(
            portal=other, entries=[InviteEntry(email=portal_user.account.email)], invited_by=None, send_email=False
        )
        other_session = portal_session_open(user=portal_user.account, ip_address=None, user_agent="")
    with tenant_context(portal):
        session_id = PortalSession.objects.get().id

    def check(where, sid):
        with tenant_context(where):
            found = portal_session_touch(session_id=str(sid), global_user_id=portal_user.account.id)
        return found and found.id

    for _ in range(3):
        assert check(portal, session_id) == session_id
        assert check(other, other_session.id) == other_session.id
        assert check(other, session_id) is None
        assert check(portal, other_session.id) is None


def test_a_revoked_member_is_restored_by_a_new_invite(portal_user, admin_on_portal, host):
    admin_on_portal.delete(f"/v1/customer-portal/users/{portal_user.member.id}/access")

    response = admin_on_portal.post("/v1/customer-portal/users/invite", {"email": "member@example.com"}, format="json")

    assert response.status_code == 201
    assert response.json()["results"][0]["status"] == "linked"
    assert portal_login(host, "member@example.com")[0] == 200


def test_an_org_admin_removed_from_the_org_is_refused(admin, admin_on_portal):
    assert admin_on_portal.get("/v1/customer-portal/users").status_code == 200
    admin.org_memberships.all().delete()

    assert admin_on_portal.get("/v1/customer-portal/users").status_code == 404


def test_tokens_for_a_deleted_portal_stop_working(portal_user, admin, portal, django_capture_on_commit_callbacks):
    from portals.services import portal_delete

    with django_capture_on_commit_callbacks(execute=True):
        portal_delete(portal=portal)

    assert portal_user.client.get("/v1/customer-portal/me").status_code == 404
    by_header = bearer_client(admin)
    assert by_header.get("/v1/customer-portal/config", HTTP_X_PORTAL_ID=str(portal.id)).status_code == 404


def test_a_session_records_the_client_and_its_idle_expiry(portal, portal_user):
    with tenant_context(portal):
        session = PortalSession.objects.get()
    assert session.ip_address == "127.0.0.1"
    assert session.expires_at - session.created_at == timedelta(minutes=24 * 60)  # the default timeout


def test_last_seen_is_written_at_most_once_a_minute_and_slides_the_expiry(portal, portal_user):
    with tenant_context(portal):
        session = PortalSession.objects.get()
        two_minutes_ago = session.last_seen_at - timedelta(minutes=2)
        PortalSession.objects.filter(id=session.id).update(
            last_seen_at=two_minutes_ago, expires_at=session.expires_at - timedelta(minutes=2)
        )

    portal_user.client.get("/v1/customer-portal/me")
    with tenant_context(portal):
        touched = PortalSession.objects.get()
    portal_user.client.get("/v1/customer-portal/me")
    with tenant_context(portal):
        again = PortalSession.objects.get()

    assert touched.last_seen_at > two_minutes_ago
    assert touched.expires_at > session.expires_at - timedelta(minutes=2)
    assert again.last_seen_at == touched.last_seen_at  # within the minute: no write
