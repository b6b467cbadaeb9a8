"""/v1/portal/{id}/users: bulk invite with auto-linking, listing, removal."""

import logging
import re

import pytest
from django.core import mail
from django.utils import timezone
from django_tenants.utils import tenant_context

from customer_portal.api.serializers import MAX_INVITES_PER_REQUEST
from customer_portal.models import Invitation, PortalSession, PortalSettings, PortalUser
from customer_portal.services import invitation_token_hash
from portals.models import Portal
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def portal(admin_client) -> Portal:
    response = admin_client.post("/v1/portal", {"name": "Acme"}, format="json")
    assert response.status_code == 201
    return Portal.objects.get(id=response.json()["id"])


def _invite(client, portal, users, query="", **body):
    return client.post(f"/v1/portal/{portal.id}/users{query}", {"users": users, **body}, format="json")


def _members(portal) -> dict[str, PortalUser]:
    with tenant_context(portal):
        return {member.email.lower(): member for member in PortalUser.objects.all()}


def test_it_links_accounts_and_invites_everyone_else(admin_client, admin, portal):
    account = UserFactory(email="Known@Example.com")

    response = _invite(
        admin_client,
        portal,
        [{"email": "known@example.com"}, {"email": "new@example.com", "name": "New", "role": "manager"}],
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["invited"], body["linked"], body["already_member"]) == (1, 1, 0)
    linked, invited = body["results"]
    assert linked["email"] == "known@example.com"
    assert linked["status"] == "linked"
    assert linked["user"]["status"] == "active"
    assert linked["user"]["global_user_id"] == str(account.id)
    assert linked["user"]["joined_at"] is not None
    assert invited["status"] == "invited"
    assert invited["user"] == {
        **invited["user"],
        "email": "new@example.com",
        "name": "New",
        "role": "manager",
        "status": "invited",
        "global_user_id": None,
        "joined_at": None,
        "last_login_at": None,
    }
    members = _members(portal)
    with tenant_context(portal):
        invitation = Invitation.objects.get()
    assert invitation.portal_user_id == members["new@example.com"].id
    assert invitation.status == Invitation.Status.PENDING
    assert invitation.invited_by == admin.email
    assert len(invitation.token_hash) == 64


def test_emails_compare_case_insensitively_and_duplicates_collapse(admin_client, portal):
    response = _invite(
        admin_client, portal, [{"email": "A@example.com"}, {"email": "b@example.com"}, {"email": "a@EXAMPLE.com"}]
    )

    body = response.json()
    assert [result["email"] for result in body["results"]] == ["a@example.com", "b@example.com"]
    assert body["invited"] == 2
    assert len(_members(portal)) == 2


def test_an_existing_member_is_already_member(admin_client, portal):
    _invite(admin_client, portal, [{"email": "a@example.com"}])

    response = _invite(admin_client, portal, [{"email": "A@example.com"}, {"email": "b@example.com"}])

    body = response.json()
    assert [r["status"] for r in body["results"]] == ["already_member", "invited"]
    assert (body["invited"], body["linked"], body["already_member"]) == (1, 0, 1)


def test_a_revoked_member_is_restored(admin_client, portal):
    UserFactory(email="back@example.com")
    _invite(admin_client, portal, [{"email": "back@example.com"}, {"email": "pending@example.com"}])
    with tenant_context(portal):
        old_invitation = Invitation.objects.get()
        PortalUser.objects.update(status=PortalUser.Status.REVOKED)

    response = _invite(admin_client, portal, [{"email": "back@example.com"}, {"email": "pending@example.com"}])

    assert [r["status"] for r in response.json()["results"]] == ["linked", "invited"]
    members = _members(portal)
    assert members["back@example.com"].status == PortalUser.Status.ACTIVE
    assert members["pending@example.com"].status == PortalUser.Status.INVITED
    with tenant_context(portal):
        old_invitation.refresh_from_db()
        assert old_invitation.status == Invitation.Status.REVOKED  # the old link must not work again
        assert Invitation.objects.filter(status=Invitation.Status.PENDING).count() == 1


def test_the_batch_is_limited_to_1000(admin_client, portal):
    users = [{"email": f"u{i}@example.com"} for i in range(MAX_INVITES_PER_REQUEST + 1)]

    too_many = _invite(admin_client, portal, users)
    none = _invite(admin_client, portal, [])

    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["loc"] == ["body", "users"]
    assert none.status_code == 422
    assert _members(portal) == {}


def test_one_invalid_entry_means_nothing_is_written(admin_client, portal):
    response = _invite(
        admin_client,
        portal,
        [{"email": "good@example.com"}, {"email": "nope"}, {"email": "x@example.com", "role": "owner"}],
    )

    assert response.status_code == 422
    assert {tuple(error["loc"]) for error in response.json()["detail"]} == {
        ("body", "users", 1, "email"),
        ("body", "users", 2, "role"),
    }
    assert _members(portal) == {}


def test_allowed_email_domains_name_each_offending_index(admin_client, portal):
    with tenant_context(portal):
        PortalSettings.objects.update(allowed_email_domains=["acme.com"])

    response = _invite(
        admin_client,
        portal,
        [{"email": "a@acme.com"}, {"email": "b@evil.com"}, {"email": "c@ACME.com"}, {"email": "d@x.org"}],
    )

    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [
        ["body", "users", 1, "email"],
        ["body", "users", 3, "email"],
    ]
    assert _members(portal) == {}


def test_a_dry_run_reports_without_writing_or_sending(admin_client, portal, django_capture_on_commit_callbacks):
    UserFactory(email="known@example.com")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = _invite(
            admin_client, portal, [{"email": "known@example.com"}, {"email": "new@example.com"}], "?dry_run=true"
        )

    assert response.status_code == 200
    assert [r["status"] for r in response.json()["results"]] == ["linked", "invited"]
    assert _members(portal) == {}
    with tenant_context(portal):
        assert not Invitation.objects.exists()
    assert mail.outbox == []
    assert not [cb for cb in callbacks if "portal_emails_send" in repr(cb)]


def test_a_bad_dry_run_flag_is_422_in_the_query(admin_client, portal):
    response = _invite(admin_client, portal, [{"email": "a@example.com"}], "?dry_run=maybe")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "dry_run"]


def test_emails_go_out_after_commit_with_a_link_to_the_portal_host(
    admin_client, portal, django_capture_on_commit_callbacks
):
    UserFactory(email="known@example.com")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _invite(admin_client, portal, [{"email": "new@example.com"}, {"email": "known@example.com"}])
    assert mail.outbox == []  # nothing is sent before the transaction commits
    for callback in callbacks:
        callback()

    invitation_mail, access_mail = sorted(mail.outbox, key=lambda message: message.to[0], reverse=True)
    assert invitation_mail.to == ["new@example.com"]
    assert invitation_mail.subject == "You are invited to Acme"
    link = re.search(r"http://acme\.localhost:8000/invite/(\S+)", invitation_mail.body)
    assert link, invitation_mail.body
    html = invitation_mail.alternatives[0][0]
    assert link.group(0) in html
    with tenant_context(portal):
        assert Invitation.objects.get().token_hash == invitation_token_hash(link.group(1))
    assert access_mail.to == ["known@example.com"]
    assert access_mail.subject == "You now have access to Acme"


def test_send_email_false_sends_nothing(admin_client, portal, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _invite(admin_client, portal, [{"email": "new@example.com"}], send_email=False)

    assert mail.outbox == []


def test_a_mail_failure_is_logged_and_never_undoes_the_invite(
    admin_client, portal, settings, caplog, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2  # nothing listens there

    with caplog.at_level(logging.ERROR), django_capture_on_commit_callbacks(execute=True):
        response = _invite(admin_client, portal, [{"email": "new@example.com"}])

    assert response.status_code == 201
    assert "new@example.com" in _members(portal)
    assert any("sending 1 portal e-mail(s)" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("size", [10, 500])
def test_the_query_count_does_not_grow_with_the_batch(admin_client, portal, django_assert_max_num_queries, size):
    for index in range(size // 2):
        UserFactory(email=f"account{index}@example.com")
    users = [{"email": f"account{index}@example.com"} for index in range(size // 2)] + [
        {"email": f"new{index}@example.com"} for index in range(size - size // 2)
    ]

    with django_assert_max_num_queries(14, info="auth, portal, schema switch, settings, lock, lookups, 2 inserts"):
        response = _invite(admin_client, portal, users)

    assert response.json()["linked"] == size // 2
    assert response.json()["invited"] == size - size // 2


# Listing and removing -----------------------------------------------------------------


def test_list_returns_everyone_without_limit_and_a_page_with_it(admin_client, portal):
    _invite(admin_client, portal, [{"email": f"u{i}@example.com"} for i in range(5)])

    everyone = admin_client.get(f"/v1/portal/{portal.id}/users")
    page = admin_client.get(f"/v1/portal/{portal.id}/users?limit=2&offset=1")

    assert everyone.status_code == 200
    assert [user["email"] for user in everyone.json()] == [f"u{i}@example.com" for i in range(5)]
    assert everyone["X-Total-Count"] == "5"
    assert [user["email"] for user in page.json()] == ["u1@example.com", "u2@example.com"]
    assert page["X-Total-Count"] == "5"


@pytest.mark.parametrize("query", ["limit=0", "limit=x", "offset=-1"])
def test_bad_paging_is_422_in_the_query(admin_client, portal, query):
    response = admin_client.get(f"/v1/portal/{portal.id}/users?{query}")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "query"


def test_a_page_costs_the_same_queries_for_few_and_many_users(admin_client, portal, django_assert_num_queries):
    _invite(admin_client, portal, [{"email": f"u{i}@example.com"} for i in range(3)])
    info = "SET search_path, auth user, portal, SET search_path, page, count"
    with django_assert_num_queries(6, info=info):
        admin_client.get(f"/v1/portal/{portal.id}/users?limit=50")
    _invite(admin_client, portal, [{"email": f"more{i}@example.com"} for i in range(60)])
    with django_assert_num_queries(6, info=info):
        assert len(admin_client.get(f"/v1/portal/{portal.id}/users?limit=50").json()) == 50


def test_removing_a_user_drops_membership_sessions_and_invitations_but_not_the_account(admin_client, portal):
    account = UserFactory(email="known@example.com")
    body = _invite(admin_client, portal, [{"email": "known@example.com"}, {"email": "new@example.com"}]).json()
    linked_id, invited_id = (result["user"]["id"] for result in body["results"])
    with tenant_context(portal):
        PortalSession.objects.create(portal_user_id=linked_id, expires_at=timezone.now())

    first = admin_client.delete(f"/v1/portal/{portal.id}/users/{linked_id}")
    second = admin_client.delete(f"/v1/portal/{portal.id}/users/{linked_id}")
    invited = admin_client.delete(f"/v1/portal/{portal.id}/users/{invited_id}")

    assert first.status_code == 200
    assert first.json() == {}
    assert second.status_code == 404
    assert invited.status_code == 200
    with tenant_context(portal):
        assert not PortalUser.objects.exists()
        assert not PortalSession.objects.exists()
        assert not Invitation.objects.exists()
    account.refresh_from_db()
    assert account.is_active
