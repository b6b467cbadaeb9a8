"""/v1/customer-portal endpoints: bodies, codes, side effects and query counts."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from customer_portal.features import FEATURE_CATALOG
from customer_portal.models import Feature, Invitation, PortalSession, PortalUser
from customer_portal.services import invitation_token_hash
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _token_from_mail(message) -> str:
    return re.search(r"/invite/(\S+)", message.body).group(1)


def _accept(host: str, token: str, password: str = "a-Long-passphrase-42", **extra: str):
    body = {"token": token, "password": password, **extra}
    return APIClient(HTTP_HOST=host).post("/v1/customer-portal/invitations/accept", body, format="json")


# Config ---------------------------------------------------------------------------------------------


def test_config_is_readable_by_portal_users_and_admins(portal_user, admin_on_portal, portal):
    for client in (portal_user.client, admin_on_portal):
        response = client.get("/v1/customer-portal/config")
        assert response.status_code == 200
        body = response.json()
        assert body["portal"] == {
            "id": str(portal.id), "name": "Acme", "slug": "acme", "domain": "acme.localhost", "custom_domain": None
        }  # fmt: skip
        assert body["display_name"] == "Acme"
        assert [feature["id"] for feature in body["features"]] == sorted(FEATURE_CATALOG)
        assert set(body) == {
            "portal", "display_name", "logo_url", "primary_color", "welcome_message", "support_email",
            "allowed_email_domains", "session_timeout_minutes", "features", "updated_at",
        }  # fmt: skip


def test_admins_update_the_config(admin_on_portal):
    response = admin_on_portal.patch(
        "/v1/customer-portal/config",
        {
            "display_name": "Acme Customers",
            "primary_color": "#AABBCC",
            "logo_url": "https://cdn.acme.com/logo.png",
            "allowed_email_domains": ["Acme.com", "@partner.org", "acme.com"],
            "session_timeout_minutes": 30,
            "support_email": "help@acme.com",
        },
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert body["display_name"] == "Acme Customers"
    assert body["primary_color"] == "#aabbcc"
    assert body["allowed_email_domains"] == ["acme.com", "partner.org"]
    assert body["session_timeout_minutes"] == 30


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("primary_color", "red"),
        ("primary_color", "#12345"),
        ("logo_url", "javascript:alert(1)"),
        ("logo_url", "ftp://acme.com/logo.png"),
        ("support_email", "not-an-email"),
        ("session_timeout_minutes", 4),
        ("session_timeout_minutes", 43_201),
        ("allowed_email_domains", ["not a domain"]),
        ("allowed_email_domains", "acme.com"),
        ("display_name", "x" * 101),
        ("portal", {"name": "hijack"}),
        ("features", []),
        ("unknown", 1),
    ],
)
def test_bad_config_values_are_422_naming_the_field(admin_on_portal, field, value):
    response = admin_on_portal.patch("/v1/customer-portal/config", {field: value}, format="json")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:2] == ["body", field]


def test_config_costs_one_query_when_warm_for_few_and_many_users(
    portal_user, make_portal_user, django_assert_num_queries
):
    # Warm: the host route and the rendered config are cached, the connection already on the portal.
    portal_user.client.get("/v1/customer-portal/config")
    with django_assert_num_queries(1, info="the session check"):
        assert portal_user.client.get("/v1/customer-portal/config").status_code == 200
    for index in range(5):
        make_portal_user(f"more{index}@example.com")
    portal_user.client.get("/v1/customer-portal/config")
    with django_assert_num_queries(1, info="the session check"):
        assert portal_user.client.get("/v1/customer-portal/config").status_code == 200


def test_config_cold_costs_a_fixed_number_of_queries(portal_user, django_assert_num_queries):
    with django_assert_num_queries(4, info="session, settings, domains, features (cold cache)"):
        portal_user.client.get("/v1/customer-portal/config")


def test_a_config_change_is_served_at_once(portal_user, admin_on_portal, django_capture_on_commit_callbacks):
    assert portal_user.client.get("/v1/customer-portal/config").json()["display_name"] == "Acme"  # cached now

    with django_capture_on_commit_callbacks(execute=True):
        admin_on_portal.patch("/v1/customer-portal/config", {"display_name": "Renamed"}, format="json")
        admin_on_portal.patch("/v1/customer-portal/features/chat/toggle", {"enabled": True}, format="json")

    config = portal_user.client.get("/v1/customer-portal/config").json()
    assert config["display_name"] == "Renamed"
    assert {f["id"]: f["enabled"] for f in config["features"]}["chat"] is True


def test_me_costs_one_query_when_warm(portal_user, django_assert_num_queries):
    portal_user.client.get("/v1/customer-portal/me")
    with django_assert_num_queries(1, info="the session check"):
        assert portal_user.client.get("/v1/customer-portal/me").status_code == 200


# Users ---------------------------------------------------------------------------------------------


def test_users_filter_search_and_page(admin_on_portal, make_portal_user, portal):
    make_portal_user("ann@example.com", role=PortalUser.Role.MANAGER)
    make_portal_user("bob@example.com")
    admin_on_portal.post("/v1/customer-portal/users/invite", {"email": "carl@other.org", "name": "Carl"}, format="json")

    everyone = admin_on_portal.get("/v1/customer-portal/users")
    invited = admin_on_portal.get("/v1/customer-portal/users?status=invited")
    managers = admin_on_portal.get("/v1/customer-portal/users?role=manager")
    search = admin_on_portal.get("/v1/customer-portal/users?search=CARL")
    page = admin_on_portal.get("/v1/customer-portal/users?limit=1&offset=1")

    assert everyone["X-Total-Count"] == "3"
    assert [u["email"] for u in invited.json()] == ["carl@other.org"]
    assert [u["email"] for u in managers.json()] == ["ann@example.com"]
    assert [u["email"] for u in search.json()] == ["carl@other.org"]
    assert len(page.json()) == 1
    assert page["X-Total-Count"] == "3"


@pytest.mark.parametrize("query", ["status=gone", "role=owner", "limit=0", "offset=-3", "limit=abc"])
def test_bad_user_filters_are_422_in_the_query(admin_on_portal, query):
    response = admin_on_portal.get(f"/v1/customer-portal/users?{query}")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "query"


def test_a_user_page_costs_the_same_queries_for_few_and_many(
    admin_on_portal, make_portal_user, django_assert_num_queries
):
    make_portal_user("first@example.com")
    info = "the account with the organizations it administers, page, count"
    admin_on_portal.get("/v1/customer-portal/users?limit=50")
    with django_assert_num_queries(3, info=info):
        admin_on_portal.get("/v1/customer-portal/users?limit=50")
    for index in range(8):
        make_portal_user(f"more{index}@example.com")
    admin_on_portal.get("/v1/customer-portal/users?limit=50")
    with django_assert_num_queries(3, info=info):
        assert len(admin_on_portal.get("/v1/customer-portal/users?limit=50").json()) == 9


def test_a_user_shows_its_active_sessions(admin_on_portal, portal_user):
    response = admin_on_portal.get(f"/v1/customer-portal/users/{portal_user.member.id}")

    assert response.status_code == 200
    [session] = response.json()["active_sessions"]
    assert session["user"]["email"] == "member@example.com"
    assert admin_on_portal.get("/v1/customer-portal/users/not-a-uuid").status_code == 404


def test_invite_one_contact_auto_links_like_the_bulk_invite(admin_on_portal, portal):
    UserFactory(email="known@example.com")

    linked = admin_on_portal.post("/v1/customer-portal/users/invite", {"email": "KNOWN@example.com"}, format="json")
    invited = admin_on_portal.post("/v1/customer-portal/users/invite", {"email": "new@example.com"}, format="json")
    again = admin_on_portal.post("/v1/customer-portal/users/invite", {"email": "new@example.com"}, format="json")

    assert linked.status_code == invited.status_code == 201
    assert linked.json()["results"][0]["status"] == "linked"
    assert invited.json()["results"][0]["status"] == "invited"
    assert again.json()["results"][0]["status"] == "already_member"


# Invitations ----------------------------------------------------------------------------------------


def test_invitations_are_created_listed_and_emailed(admin_on_portal, admin, host, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_on_portal.post(
            "/v1/customer-portal/invitations",
            {"email": "guest@example.com", "name": "Guest", "role": "manager", "message": "Welcome aboard"},
            format="json",
        )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "name", "role", "status", "invited_by", "created_at", "expires_at"}
    assert (body["email"], body["role"], body["status"], body["invited_by"]) == (
        "guest@example.com", "manager", "pending", admin.email
    )  # fmt: skip
    assert "token" not in str(body).lower()
    [message] = mail.outbox
    assert "Welcome aboard" in message.body
    assert f"http://{host}:8000/invite/" in message.body
    listed = admin_on_portal.get("/v1/customer-portal/invitations").json()
    assert [invitation["id"] for invitation in listed] == [body["id"]]


def test_inviting_an_active_member_is_422(admin_on_portal, portal_user):
    response = admin_on_portal.post("/v1/customer-portal/invitations", {"email": "member@example.com"}, format="json")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "email"]


def test_accepting_creates_an_account_once(admin_on_portal, host, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        admin_on_portal.post("/v1/customer-portal/invitations", {"email": "guest@example.com"}, format="json")
    token = _token_from_mail(mail.outbox[-1])

    weak = _accept(host, token, password="123")
    accepted = _accept(host, token, name="Guest Person")
    replay = _accept(host, token)

    assert weak.status_code == 422
    assert weak.json()["detail"][0]["loc"] == ["body", "password"]
    assert accepted.status_code == 200
    client = APIClient(HTTP_HOST=host)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {accepted.json()['access']}")
    me = client.get("/v1/customer-portal/me").json()
    assert (me["user"]["name"], me["user"]["status"]) == ("Guest Person", "active")
    assert replay.status_code == 404
    assert replay.json() == {"detail": "This invitation link is not valid: it may have been used, revoked or expired."}


def test_accepting_links_an_existing_account_with_its_password(
    admin_on_portal, host, portal, django_capture_on_commit_callbacks
):
    account = UserFactory(email="known@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        admin_on_portal.post("/v1/customer-portal/invitations", {"email": "known@example.com"}, format="json")
    token = _token_from_mail(mail.outbox[-1])

    wrong = _accept(host, token, password="not it")
    right = _accept(host, token, password="correct horse battery staple")

    assert wrong.status_code == 422
    assert right.status_code == 200
    with tenant_context(portal):
        assert PortalUser.objects.get(email="known@example.com").global_user_id == account.id


def test_resend_kills_the_old_link_and_revives_an_expired_invitation(
    admin_on_portal, host, portal, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        created = admin_on_portal.post("/v1/customer-portal/invitations", {"email": "g@example.com"}, format="json")
    old_token = _token_from_mail(mail.outbox[-1])
    with tenant_context(portal):
        Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))

    expired = admin_on_portal.get("/v1/customer-portal/invitations?status=expired").json()
    pending = admin_on_portal.get("/v1/customer-portal/invitations").json()
    with django_capture_on_commit_callbacks(execute=True):
        resent = admin_on_portal.post(f"/v1/customer-portal/invitations/{created.json()['id']}/resend")
    new_token = _token_from_mail(mail.outbox[-1])

    assert [i["status"] for i in expired] == ["expired"]
    assert pending == []
    assert resent.status_code == 200
    assert resent.json()["status"] == "pending"
    assert new_token != old_token
    assert _accept(host, old_token).status_code == 404
    assert _accept(host, new_token).status_code == 200


def test_revoking_an_invitation_kills_its_link(admin_on_portal, host, portal, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        created = admin_on_portal.post("/v1/customer-portal/invitations", {"email": "g@example.com"}, format="json")
    token = _token_from_mail(mail.outbox[-1])

    revoked = admin_on_portal.delete(f"/v1/customer-portal/invitations/{created.json()['id']}")

    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    assert _accept(host, token).status_code == 404
    assert admin_on_portal.post(f"/v1/customer-portal/invitations/{created.json()['id']}/resend").status_code == 409
    listed = admin_on_portal.get("/v1/customer-portal/invitations?status=revoked").json()
    assert [i["id"] for i in listed] == [created.json()["id"]]


@pytest.mark.parametrize("token", ["", "x" * 43, "../../etc/passwd", "a" * 201])
def test_unknown_tokens_are_404_or_422(host, portal, token):
    response = _accept(host, token)

    assert response.status_code in (404, 422)
    assert "email" not in str(response.json())


def test_the_stored_token_is_only_a_hash(admin_on_portal, portal, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        admin_on_portal.post("/v1/customer-portal/invitations", {"email": "g@example.com"}, format="json")
    token = _token_from_mail(mail.outbox[-1])

    with tenant_context(portal):
        stored = Invitation.objects.get().token_hash
    assert len(token) >= 43  # 256 random bits, URL-safe base64
    assert stored == invitation_token_hash(token) != token


# Sessions, stats, features ---------------------------------------------------------------------------


def test_sessions_list_only_live_ones(admin_on_portal, make_portal_user, portal):
    first = make_portal_user("a@example.com")
    make_portal_user("b@example.com")
    with tenant_context(portal):
        PortalSession.objects.filter(portal_user=first.member).update(ended_at=timezone.now())

    sessions = admin_on_portal.get("/v1/customer-portal/sessions").json()

    assert [s["user"]["email"] for s in sessions] == ["b@example.com"]
    assert set(sessions[0]) == {"id", "user", "created_at", "last_seen_at", "expires_at", "ip_address", "user_agent"}
    assert admin_on_portal.delete(f"/v1/customer-portal/sessions/{sessions[0]['id']}").status_code == 200
    assert admin_on_portal.delete(f"/v1/customer-portal/sessions/{sessions[0]['id']}").status_code == 404


def test_stats_follow_a_scripted_sequence(admin_on_portal, make_portal_user, portal, host):
    from tests.customer_portal.conftest import portal_login

    alice = make_portal_user("alice@example.com")
    make_portal_user("bob@example.com")
    portal_login(host, "bob@example.com")  # a second login for bob
    admin_on_portal.post("/v1/customer-portal/users/invite", {"email": "carol@example.com"}, format="json")
    admin_on_portal.post("/v1/customer-portal/users/invite", {"email": "dave@example.com"}, format="json")
    with tenant_context(portal):
        Invitation.objects.filter(portal_user__email="dave@example.com").update(expires_at=timezone.now())
    admin_on_portal.delete(f"/v1/customer-portal/users/{alice.member.id}/access")
    admin_on_portal.patch("/v1/customer-portal/features/chat/toggle", {"enabled": True}, format="json")

    stats = admin_on_portal.get("/v1/customer-portal/stats").json()

    assert stats == {
        "users": {"total": 4, "active": 1, "invited": 2, "revoked": 1},
        "invitations": {"pending": 1, "accepted": 0, "expired": 1, "revoked": 0},
        "sessions": {"active": 2},
        "logins": {"last_24h": 3, "last_7d": 3, "last_30d": 3},
        "features": {"enabled": sum(f.enabled_by_default for f in FEATURE_CATALOG.values()) + 1, "total": 5},
    }


def test_feature_toggle_flips_and_sets(admin_on_portal, portal):
    flipped = admin_on_portal.patch("/v1/customer-portal/features/chat/toggle")
    flipped_back = admin_on_portal.patch("/v1/customer-portal/features/chat/toggle", {}, format="json")
    set_on = admin_on_portal.patch("/v1/customer-portal/features/chat/toggle", {"enabled": True}, format="json")
    set_on_again = admin_on_portal.patch("/v1/customer-portal/features/chat/toggle", {"enabled": True}, format="json")

    assert [r.json()["enabled"] for r in (flipped, flipped_back, set_on, set_on_again)] == [True, False, True, True]
    assert set(flipped.json()) == {"id", "name", "description", "enabled", "updated_at"}
    assert flipped.json()["name"] == "Chat"
    assert admin_on_portal.patch("/v1/customer-portal/features/teleport/toggle").status_code == 404
    bad = admin_on_portal.patch("/v1/customer-portal/features/chat/toggle", {"enabled": "maybe"}, format="json")
    assert bad.status_code == 422
    with tenant_context(portal):
        assert Feature.objects.get(key="chat").enabled
