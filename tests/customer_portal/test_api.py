"""/v1/customer-portal endpoints: bodies, codes, side effects and query counts."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from customer_portal.features import FEATURE_CATALOG
from customer_portal.models import Feature, Invitation, PortalSession, PortalUser
from customer_portal.services import invitation_token_hash
from tests.conftest import (
    PORTAL_USER_EMAIL,
    bearer_client,
    invite,
    invite_token,
    make_portal,
    portal_login,
    token_client,
)
from tests.factories import UserFactory
from tests.jobs import run_jobs

pytestmark = pytest.mark.django_db


def _invited(client: APIClient, capture_on_commit, email: str) -> tuple[dict, str]:
    """POST /invitations, run its e-mail job, and return the invitation and the token the e-mail carries."""
    with capture_on_commit(execute=True):
        created = client.post("/v1/customer-portal/invitations", {"email": email}, format="json")
    assert created.status_code == 201, created.content
    run_jobs()  # the e-mail job the change queued
    return created.json(), invite_token(mail.outbox[-1])


def _accept(host: str, token: str, password: str = "a-Long-passphrase-42", **extra: str):
    body = {"token": token, "password": password, **extra}
    return APIClient(HTTP_HOST=host).post("/v1/customer-portal/invitations/accept", body, format="json")


# Config ---------------------------------------------------------------------------------------------


def test_config_is_readable_by_portal_users_and_admins(portal_user, owner_on_portal, portal):
    for client in (portal_user.client, owner_on_portal):
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


def test_admins_update_the_config(owner_on_portal):
    response = owner_on_portal.patch(
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
def test_bad_config_values_are_422_naming_the_field(owner_on_portal, field, value):
    response = owner_on_portal.patch("/v1/customer-portal/config", {field: value}, format="json")

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


def test_a_config_change_is_served_at_once(portal_user, owner_on_portal, django_capture_on_commit_callbacks):
    assert portal_user.client.get("/v1/customer-portal/config").json()["display_name"] == "Acme"  # cached now

    with django_capture_on_commit_callbacks(execute=True):
        owner_on_portal.patch("/v1/customer-portal/config", {"display_name": "Renamed"}, format="json")
        owner_on_portal.patch("/v1/customer-portal/features/chat/toggle", {"enabled": True}, format="json")

    config = portal_user.client.get("/v1/customer-portal/config").json()
    assert config["display_name"] == "Renamed"
    assert {f["id"]: f["enabled"] for f in config["features"]}["chat"] is True


def test_each_portal_serves_its_own_config_cold_and_cached(owner, owner_on_portal, portal, portal_user):
    other = make_portal(owner, name="Other", slug="other")
    on_other = bearer_client(owner, host="other.localhost")
    by_header = bearer_client(owner)
    for client, name, color in ((owner_on_portal, "Acme people", "#aa0000"), (on_other, "Other people", "#00bb00")):
        body = {"display_name": name, "primary_color": color}
        assert client.patch("/v1/customer-portal/config", body, format="json").status_code == 200
    expected = {
        portal.id: ("Acme people", "#aa0000", "acme.localhost"),
        other.id: ("Other people", "#00bb00", "other.localhost"),
    }

    for _ in range(2):  # the second round is served from the cache
        for client, target, extra in (
            (owner_on_portal, portal, {}),
            (on_other, other, {}),
            (by_header, portal, {"HTTP_X_PORTAL_ID": str(portal.id)}),
            (by_header, other, {"HTTP_X_PORTAL_ID": str(other.id)}),
            (portal_user.client, portal, {}),
        ):
            body = client.get("/v1/customer-portal/config", **extra).json()
            seen = (body["display_name"], body["primary_color"], body["portal"]["domain"])
            assert (body["portal"]["id"], seen) == (str(target.id), expected[target.id]), extra


def test_me_costs_one_query_when_warm(portal_user, django_assert_num_queries):
    portal_user.client.get("/v1/customer-portal/me")
    with django_assert_num_queries(1, info="the session check"):
        assert portal_user.client.get("/v1/customer-portal/me").status_code == 200


# Users ---------------------------------------------------------------------------------------------


def test_users_filter_search_and_page(owner_on_portal, make_portal_user, portal):
    make_portal_user("ann@example.com", role=PortalUser.Role.MANAGER)
    make_portal_user("bob@example.com")
    owner_on_portal.post("/v1/customer-portal/users/invite", {"email": "carl@other.org", "name": "Carl"}, format="json")

    everyone = owner_on_portal.get("/v1/customer-portal/users")
    invited = owner_on_portal.get("/v1/customer-portal/users?status=invited")
    managers = owner_on_portal.get("/v1/customer-portal/users?role=manager")
    search = owner_on_portal.get("/v1/customer-portal/users?search=CARL")
    page = owner_on_portal.get("/v1/customer-portal/users?limit=1&offset=1")

    assert everyone["X-Total-Count"] == "3"
    assert [u["email"] for u in invited.json()] == ["carl@other.org"]
    assert [u["email"] for u in managers.json()] == ["ann@example.com"]
    assert [u["email"] for u in search.json()] == ["carl@other.org"]
    assert len(page.json()) == 1
    assert page["X-Total-Count"] == "3"


@pytest.mark.parametrize("query", ["status=gone", "role=owner", "limit=0", "offset=-3", "limit=abc"])
def test_bad_user_filters_are_422_in_the_query(owner_on_portal, query):
    response = owner_on_portal.get(f"/v1/customer-portal/users?{query}")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "query"


def test_a_user_page_costs_the_same_queries_for_few_and_many(
    owner_on_portal, make_portal_user, django_assert_num_queries
):
    make_portal_user("first@example.com")
    info = "the account with the organizations it administers, page, count"
    owner_on_portal.get("/v1/customer-portal/users?limit=50")
    with django_assert_num_queries(3, info=info):
        owner_on_portal.get("/v1/customer-portal/users?limit=50")
    for index in range(8):
        make_portal_user(f"more{index}@example.com")
    owner_on_portal.get("/v1/customer-portal/users?limit=50")
    with django_assert_num_queries(3, info=info):
        assert len(owner_on_portal.get("/v1/customer-portal/users?limit=50").json()) == 9


def test_a_user_shows_its_own_active_sessions(owner_on_portal, portal_user, make_portal_user, portal):
    other = make_portal_user("other@example.com")  # a live session of someone else must not show up
    with tenant_context(portal):
        own_session = PortalSession.objects.get(portal_user=portal_user.member)

    response = owner_on_portal.get(f"/v1/customer-portal/users/{portal_user.member.id}")

    assert response.status_code == 200
    assert response.json()["email"] == PORTAL_USER_EMAIL
    [session] = response.json()["active_sessions"]
    assert session["id"] == str(own_session.id)
    assert session["user"] == {"id": str(portal_user.member.id), "email": PORTAL_USER_EMAIL}
    assert owner_on_portal.get(f"/v1/customer-portal/users/{other.member.id}").json()["email"] == "other@example.com"
    assert owner_on_portal.get("/v1/customer-portal/users/not-a-uuid").status_code == 404


def test_a_user_costs_the_same_queries_with_one_session_and_with_ten(
    owner_on_portal, portal_user, portal_host, django_assert_num_queries
):
    path = f"/v1/customer-portal/users/{portal_user.member.id}"
    info = "the account with the organizations it administers, the portal user, its live sessions (one prefetch)"
    owner_on_portal.get(path)  # warm: the host route is cached
    with django_assert_num_queries(3, info=info):
        assert len(owner_on_portal.get(path).json()["active_sessions"]) == 1
    for _ in range(9):
        assert portal_login(portal_host, PORTAL_USER_EMAIL)[0] == 200  # each login opens one more session
    with django_assert_num_queries(3, info=info):
        assert len(owner_on_portal.get(path).json()["active_sessions"]) == 10


def test_invite_one_contact_auto_links_like_the_bulk_invite(owner_on_portal, portal):
    UserFactory(email="known@example.com")

    linked = owner_on_portal.post("/v1/customer-portal/users/invite", {"email": "KNOWN@example.com"}, format="json")
    invited = owner_on_portal.post("/v1/customer-portal/users/invite", {"email": "new@example.com"}, format="json")
    again = owner_on_portal.post("/v1/customer-portal/users/invite", {"email": "new@example.com"}, format="json")

    assert linked.status_code == invited.status_code == 201
    assert linked.json()["results"][0]["status"] == "linked"
    assert invited.json()["results"][0]["status"] == "invited"
    assert again.json()["results"][0]["status"] == "already_member"


# Invitations ----------------------------------------------------------------------------------------


def test_invitations_are_created_listed_and_emailed(
    owner_on_portal, owner, portal_host, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_on_portal.post(
            "/v1/customer-portal/invitations",
            {"email": "guest@example.com", "name": "Guest", "role": "manager", "message": "Welcome aboard"},
            format="json",
        )
    run_jobs()  # the e-mail jobs the change queued

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "id", "email", "name", "role", "status", "invited_by", "created_at", "expires_at",
        "delivery_status", "delivery_attempts", "delivered_at", "delivery_error",
    }  # fmt: skip
    assert (body["email"], body["role"], body["status"], body["invited_by"]) == (
        "guest@example.com", "manager", "pending", owner.email
    )  # fmt: skip
    # Answered before the e-mail goes out: it is queued, and a worker sends it.
    assert (body["delivery_status"], body["delivery_attempts"], body["delivered_at"], body["delivery_error"]) == (
        "queued", 0, None, None
    )  # fmt: skip
    assert "token" not in str(body).lower()
    [message] = mail.outbox
    assert "Welcome aboard" in message.body
    assert f"http://{portal_host}:8000/invite/" in message.body
    [listed] = owner_on_portal.get("/v1/customer-portal/invitations").json()
    assert listed["id"] == body["id"]
    assert (listed["delivery_status"], listed["delivery_attempts"], listed["delivery_error"]) == ("sent", 1, None)
    assert listed["delivered_at"] is not None


def test_invitations_filter_by_where_their_email_stands(owner_on_portal, smtp):
    smtp.refuse("bounce@example.com")
    for email in ("ok@example.com", "bounce@example.com"):
        owner_on_portal.post("/v1/customer-portal/invitations", {"email": email}, format="json")
    run_jobs(queues=["email"])
    owner_on_portal.post("/v1/customer-portal/invitations", {"email": "later@example.com"}, format="json")

    def listed(delivery_status: str) -> list[str]:
        response = owner_on_portal.get(f"/v1/customer-portal/invitations?delivery_status={delivery_status}")
        return [invitation["email"] for invitation in response.json()]

    by_status = {status: listed(status) for status in ("queued", "sent", "failed")}
    bad = owner_on_portal.get("/v1/customer-portal/invitations?delivery_status=bounced")

    assert by_status == {"queued": ["later@example.com"], "sent": ["ok@example.com"], "failed": ["bounce@example.com"]}
    [failed] = owner_on_portal.get("/v1/customer-portal/invitations?delivery_status=failed").json()
    assert (failed["delivery_status"], failed["delivery_attempts"], failed["delivered_at"]) == ("failed", 1, None)
    assert failed["delivery_error"].startswith("550 5.1.1 <bounce@example.com>")
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "delivery_status"]


def test_inviting_an_active_member_is_422(owner_on_portal, portal_user):
    response = owner_on_portal.post("/v1/customer-portal/invitations", {"email": PORTAL_USER_EMAIL}, format="json")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "email"]


def test_accepting_creates_an_account_once(owner_on_portal, portal_host, django_capture_on_commit_callbacks):
    _, token = _invited(owner_on_portal, django_capture_on_commit_callbacks, "guest@example.com")

    weak = _accept(portal_host, token, password="123")
    accepted = _accept(portal_host, token, name="Guest Person")
    replay = _accept(portal_host, token)

    assert weak.status_code == 422
    assert weak.json()["detail"][0]["loc"] == ["body", "password"]
    assert accepted.status_code == 200
    me = token_client(accepted.json()["access"], portal_host).get("/v1/customer-portal/me").json()
    assert (me["user"]["name"], me["user"]["status"]) == ("Guest Person", "active")
    assert replay.status_code == 404
    assert replay.json() == {"detail": "This invitation link is not valid: it may have been used, revoked or expired."}


def test_accepting_links_an_existing_account_with_its_password(
    owner_on_portal, portal_host, portal, django_capture_on_commit_callbacks
):
    account = UserFactory(email="known@example.com")
    _, token = _invited(owner_on_portal, django_capture_on_commit_callbacks, "known@example.com")

    wrong = _accept(portal_host, token, password="not it")
    right = _accept(portal_host, token, password="correct horse battery staple")

    assert wrong.status_code == 422
    assert right.status_code == 200
    with tenant_context(portal):
        assert PortalUser.objects.get(email="known@example.com").global_user_id == account.id


def test_resend_kills_the_old_link_and_revives_an_expired_invitation(
    owner_on_portal, portal_host, portal, django_capture_on_commit_callbacks
):
    created, old_token = _invited(owner_on_portal, django_capture_on_commit_callbacks, "g@example.com")
    with tenant_context(portal):
        Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))

    expired = owner_on_portal.get("/v1/customer-portal/invitations?status=expired").json()
    pending = owner_on_portal.get("/v1/customer-portal/invitations").json()
    with django_capture_on_commit_callbacks(execute=True):
        resent = owner_on_portal.post(f"/v1/customer-portal/invitations/{created['id']}/resend")
    run_jobs()  # the e-mail job the resend queued
    new_token = invite_token(mail.outbox[-1])

    assert [i["status"] for i in expired] == ["expired"]
    assert pending == []
    assert resent.status_code == 200
    assert resent.json()["status"] == "pending"
    assert new_token != old_token
    assert _accept(portal_host, old_token).status_code == 404
    assert _accept(portal_host, new_token).status_code == 200


def test_revoking_an_invitation_kills_its_link(
    owner_on_portal, portal_host, portal, django_capture_on_commit_callbacks
):
    created, token = _invited(owner_on_portal, django_capture_on_commit_callbacks, "g@example.com")

    revoked = owner_on_portal.delete(f"/v1/customer-portal/invitations/{created['id']}")

    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    assert _accept(portal_host, token).status_code == 404
    assert owner_on_portal.post(f"/v1/customer-portal/invitations/{created['id']}/resend").status_code == 409
    listed = owner_on_portal.get("/v1/customer-portal/invitations?status=revoked").json()
    assert [i["id"] for i in listed] == [created["id"]]


@pytest.mark.parametrize("token", ["x" * 43, "../../etc/passwd", "a" * 200])
def test_unknown_tokens_are_404(portal_host, portal, token):
    response = _accept(portal_host, token)

    assert response.status_code == 404
    assert response.json() == {
        "detail": "This invitation link is not valid: it may have been used, revoked or expired."
    }


@pytest.mark.parametrize(
    ("token", "msg"), [("", "This field may not be blank."), ("a" * 201, "no more than 200 characters")]
)
def test_a_blank_or_overlong_token_is_422_at_body_token(portal_host, portal, token, msg):
    response = _accept(portal_host, token)

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "token"]
    assert msg in error["msg"]
    assert "email" not in str(response.json())


def test_invitations_cost_the_same_queries_for_one_and_for_ten(owner_on_portal, portal, django_assert_num_queries):
    info = "the account with the organizations it administers, invitations with their portal users (one join)"
    invite(portal, "first@example.com")
    owner_on_portal.get("/v1/customer-portal/invitations")  # warm: the host route is cached
    with django_assert_num_queries(2, info=info):
        assert len(owner_on_portal.get("/v1/customer-portal/invitations").json()) == 1
    invite(portal, *[f"more{index}@example.com" for index in range(9)])
    with django_assert_num_queries(2, info=info):
        listed = owner_on_portal.get("/v1/customer-portal/invitations").json()
    assert sorted(invitation["email"] for invitation in listed) == sorted(
        ["first@example.com", *[f"more{index}@example.com" for index in range(9)]]
    )


def test_the_stored_token_is_only_a_hash(owner_on_portal, portal, django_capture_on_commit_callbacks):
    _, token = _invited(owner_on_portal, django_capture_on_commit_callbacks, "g@example.com")

    with tenant_context(portal):
        stored = Invitation.objects.get().token_hash
    assert len(token) >= 43  # 256 random bits, URL-safe base64
    assert stored == invitation_token_hash(token) != token


# Sessions, stats, features ---------------------------------------------------------------------------


def test_sessions_list_only_live_ones(owner_on_portal, make_portal_user, portal):
    first = make_portal_user("a@example.com")
    make_portal_user("b@example.com")
    with tenant_context(portal):
        PortalSession.objects.filter(portal_user=first.member).update(ended_at=timezone.now())

    sessions = owner_on_portal.get("/v1/customer-portal/sessions").json()

    assert [s["user"]["email"] for s in sessions] == ["b@example.com"]
    assert set(sessions[0]) == {"id", "user", "created_at", "last_seen_at", "expires_at", "ip_address", "user_agent"}
    assert owner_on_portal.delete(f"/v1/customer-portal/sessions/{sessions[0]['id']}").status_code == 200
    assert owner_on_portal.delete(f"/v1/customer-portal/sessions/{sessions[0]['id']}").status_code == 404


def test_sessions_cost_the_same_queries_for_one_and_for_ten(
    owner_on_portal, make_portal_user, django_assert_num_queries
):
    info = "the account with the organizations it administers, live sessions with their portal users (one join)"
    make_portal_user("first@example.com")
    owner_on_portal.get("/v1/customer-portal/sessions")  # warm: the host route is cached
    with django_assert_num_queries(2, info=info):
        assert len(owner_on_portal.get("/v1/customer-portal/sessions").json()) == 1
    for index in range(9):
        make_portal_user(f"more{index}@example.com")
    with django_assert_num_queries(2, info=info):
        sessions = owner_on_portal.get("/v1/customer-portal/sessions").json()
    assert len({session["user"]["email"] for session in sessions}) == 10


def test_stats_cost_the_same_queries_for_one_and_for_ten(
    owner_on_portal, make_portal_user, portal, django_assert_num_queries
):
    info = "the account with its organizations, one aggregate each: users, invitations, sessions and logins, features"
    make_portal_user("first@example.com")
    invite(portal, "invited-first@example.com")
    owner_on_portal.get("/v1/customer-portal/stats")  # warm: the host route is cached
    with django_assert_num_queries(5, info=info):
        assert owner_on_portal.get("/v1/customer-portal/stats").json()["users"]["total"] == 2
    for index in range(9):
        make_portal_user(f"more{index}@example.com")
    invite(portal, *[f"invited{index}@example.com" for index in range(9)])
    with django_assert_num_queries(5, info=info):
        stats = owner_on_portal.get("/v1/customer-portal/stats").json()
    assert (stats["users"]["total"], stats["invitations"]["pending"], stats["sessions"]["active"]) == (20, 10, 10)


def test_stats_follow_a_scripted_sequence(owner_on_portal, make_portal_user, portal, portal_host):
    alice = make_portal_user("alice@example.com")
    make_portal_user("bob@example.com")
    portal_login(portal_host, "bob@example.com")  # a second login for bob
    owner_on_portal.post("/v1/customer-portal/users/invite", {"email": "carol@example.com"}, format="json")
    owner_on_portal.post("/v1/customer-portal/users/invite", {"email": "dave@example.com"}, format="json")
    owner_on_portal.post("/v1/customer-portal/users/invite", {"email": "erin@example.com"}, format="json")
    with tenant_context(portal):
        Invitation.objects.filter(portal_user__email="dave@example.com").update(expires_at=timezone.now())
    run_jobs(queues=["email"])  # carol's and dave's e-mails (dave's link died first: not sent)
    owner_on_portal.post("/v1/customer-portal/users/invite", {"email": "fay@example.com"}, format="json")  # queued
    owner_on_portal.delete(f"/v1/customer-portal/users/{alice.member.id}/access")
    owner_on_portal.patch("/v1/customer-portal/features/chat/toggle", {"enabled": True}, format="json")

    stats = owner_on_portal.get("/v1/customer-portal/stats").json()

    assert stats == {
        "users": {"total": 6, "active": 1, "invited": 4, "revoked": 1},
        "invitations": {"pending": 3, "accepted": 0, "expired": 1, "revoked": 0},
        "invitation_emails": {"queued": 1, "sent": 2, "failed": 1},
        "sessions": {"active": 2},
        "logins": {"last_24h": 3, "last_7d": 3, "last_30d": 3},
        "features": {"enabled": sum(f.enabled_by_default for f in FEATURE_CATALOG.values()) + 1, "total": 5},
    }


def test_feature_toggle_flips_and_sets(owner_on_portal, portal):
    flipped = owner_on_portal.patch("/v1/customer-portal/features/chat/toggle")
    flipped_back = owner_on_portal.patch("/v1/customer-portal/features/chat/toggle", {}, format="json")
    set_on = owner_on_portal.patch("/v1/customer-portal/features/chat/toggle", {"enabled": True}, format="json")
    set_on_again = owner_on_portal.patch("/v1/customer-portal/features/chat/toggle", {"enabled": True}, format="json")

    assert [r.json()["enabled"] for r in (flipped, flipped_back, set_on, set_on_again)] == [True, False, True, True]
    assert set(flipped.json()) == {"id", "name", "description", "enabled", "updated_at"}
    assert flipped.json()["name"] == "Chat"
    assert owner_on_portal.patch("/v1/customer-portal/features/teleport/toggle").status_code == 404
    bad = owner_on_portal.patch("/v1/customer-portal/features/chat/toggle", {"enabled": "maybe"}, format="json")
    assert bad.status_code == 422
    with tenant_context(portal):
        assert Feature.objects.get(key="chat").enabled
