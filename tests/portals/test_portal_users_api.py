"""/v1/portal/{id}/users: bulk invite with auto-linking, listing, removal."""

import re

import pytest
from django.core import mail
from django.utils import timezone
from django_tenants.utils import tenant_context

from customer_portal.api.serializers import MAX_INVITES_PER_REQUEST
from customer_portal.models import Invitation, PortalSession, PortalSettings, PortalUser
from customer_portal.services import invitation_token_hash
from tests.conftest import members
from tests.factories import UserFactory
from tests.jobs import queued_jobs, run_jobs

pytestmark = pytest.mark.django_db


def _invite(client, portal, users, query="", **body):
    return client.post(f"/v1/portal/{portal.id}/users{query}", {"users": users, **body}, format="json")


def test_it_links_accounts_and_invites_everyone_else(owner_api, owner, portal):
    account = UserFactory(email="Known@Example.com")

    response = _invite(
        owner_api,
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
    invited = members(portal)
    with tenant_context(portal):
        invitation = Invitation.objects.get()
    assert invitation.portal_user_id == invited["new@example.com"].id
    assert invitation.status == Invitation.Status.PENDING
    assert invitation.invited_by == owner.email
    assert len(invitation.token_hash) == 64


def test_emails_compare_case_insensitively_and_duplicates_collapse(owner_api, portal):
    response = _invite(
        owner_api, portal, [{"email": "A@example.com"}, {"email": "b@example.com"}, {"email": "a@EXAMPLE.com"}]
    )

    body = response.json()
    assert [result["email"] for result in body["results"]] == ["a@example.com", "b@example.com"]
    assert body["invited"] == 2
    assert len(members(portal)) == 2


def test_an_existing_member_is_already_member(owner_api, portal):
    _invite(owner_api, portal, [{"email": "a@example.com"}])

    response = _invite(owner_api, portal, [{"email": "A@example.com"}, {"email": "b@example.com"}])

    body = response.json()
    assert [r["status"] for r in body["results"]] == ["already_member", "invited"]
    assert (body["invited"], body["linked"], body["already_member"]) == (1, 0, 1)


def test_a_revoked_member_is_restored(owner_api, portal):
    UserFactory(email="back@example.com")
    _invite(owner_api, portal, [{"email": "back@example.com"}, {"email": "pending@example.com"}])
    with tenant_context(portal):
        old_invitation = Invitation.objects.get()
        PortalUser.objects.update(status=PortalUser.Status.REVOKED)

    response = _invite(owner_api, portal, [{"email": "back@example.com"}, {"email": "pending@example.com"}])

    assert [r["status"] for r in response.json()["results"]] == ["linked", "invited"]
    restored = members(portal)
    assert restored["back@example.com"].status == PortalUser.Status.ACTIVE
    assert restored["pending@example.com"].status == PortalUser.Status.INVITED
    with tenant_context(portal):
        old_invitation.refresh_from_db()
        assert old_invitation.status == Invitation.Status.REVOKED  # the old link must not work again
        assert Invitation.objects.filter(status=Invitation.Status.PENDING).count() == 1


def test_the_batch_is_limited_to_1000(owner_api, portal):
    users = [{"email": f"u{i}@example.com"} for i in range(MAX_INVITES_PER_REQUEST + 1)]

    too_many = _invite(owner_api, portal, users)
    none = _invite(owner_api, portal, [])

    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["loc"] == ["body", "users"]
    assert none.status_code == 422
    assert members(portal) == {}


def test_one_invalid_entry_means_nothing_is_written(owner_api, portal):
    response = _invite(
        owner_api,
        portal,
        [{"email": "good@example.com"}, {"email": "nope"}, {"email": "x@example.com", "role": "owner"}],
    )

    assert response.status_code == 422
    assert {tuple(error["loc"]) for error in response.json()["detail"]} == {
        ("body", "users", 1, "email"),
        ("body", "users", 2, "role"),
    }
    assert members(portal) == {}


def test_allowed_email_domains_name_each_offending_index(owner_api, portal):
    with tenant_context(portal):
        PortalSettings.objects.update(allowed_email_domains=["acme.com"])

    response = _invite(
        owner_api,
        portal,
        [{"email": "a@acme.com"}, {"email": "b@evil.com"}, {"email": "c@ACME.com"}, {"email": "d@x.org"}],
    )

    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [
        ["body", "users", 1, "email"],
        ["body", "users", 3, "email"],
    ]
    assert members(portal) == {}


def test_a_dry_run_reports_without_writing_or_sending(owner_api, portal, django_capture_on_commit_callbacks):
    UserFactory(email="known@example.com")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = _invite(
            owner_api, portal, [{"email": "known@example.com"}, {"email": "new@example.com"}], "?dry_run=true"
        )

    assert response.status_code == 200
    assert [r["status"] for r in response.json()["results"]] == ["linked", "invited"]
    assert members(portal) == {}
    with tenant_context(portal):
        assert not Invitation.objects.exists()
    assert mail.outbox == []
    assert callbacks == []  # nothing is queued to run after commit: no e-mail, no cache change
    assert queued_jobs(task_name="deliver_portal_email") == []


def test_a_bad_dry_run_flag_is_422_in_the_query(owner_api, portal):
    response = _invite(owner_api, portal, [{"email": "a@example.com"}], "?dry_run=maybe")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "dry_run"]


def test_each_email_is_a_job_queued_with_the_invite_and_sent_by_a_worker(owner_api, portal):
    UserFactory(email="known@example.com")

    _invite(owner_api, portal, [{"email": "new@example.com"}, {"email": "known@example.com"}])

    assert mail.outbox == []  # the answer does not wait for the mail server
    jobs = queued_jobs(task_name="deliver_portal_email")
    assert sorted(job.task_kwargs["kind"] for job in jobs) == ["access_granted", "invitation"]
    assert {job.queue for job in jobs} == {"email"}
    assert all(job.task_kwargs["portal_id"] == str(portal.id) for job in jobs)
    assert not any("token" in str(job.task_kwargs).lower() for job in jobs)  # the job carries no secret

    runs = run_jobs(queues=["email"])

    assert [run.status for run in runs] == ["succeeded", "succeeded"]
    invitation_mail, access_mail = sorted(mail.outbox, key=lambda message: message.to[0], reverse=True)
    assert invitation_mail.to == ["new@example.com"]
    assert invitation_mail.subject == "You are invited to Acme"
    link = re.search(r"http://acme\.localhost:8000/invite/(\S+)", invitation_mail.body)
    assert link, invitation_mail.body
    html = invitation_mail.alternatives[0][0]
    assert link.group(0) in html
    with tenant_context(portal):
        invitation = Invitation.objects.get()
        linked = PortalUser.objects.get(email="known@example.com")
    assert invitation.token_hash == invitation_token_hash(link.group(1))
    assert (invitation.delivery_status, invitation.delivery_attempts) == ("sent", 1)
    assert access_mail.to == ["known@example.com"]
    assert access_mail.subject == "You now have access to Acme"
    assert (linked.delivery_status, linked.delivery_attempts) == ("sent", 1)


def test_send_email_false_queues_nothing(owner_api, portal):
    _invite(owner_api, portal, [{"email": "new@example.com"}], send_email=False)

    assert queued_jobs(task_name="deliver_portal_email") == []
    with tenant_context(portal):
        assert Invitation.objects.get().delivery_status == ""
    [listed] = owner_api.get("/v1/customer-portal/invitations", HTTP_X_PORTAL_ID=str(portal.id)).json()
    assert listed["delivery_status"] is None


def test_a_mail_server_that_is_down_never_undoes_the_invite_and_shows_on_the_invitation(owner_api, portal, mail_down):

    response = _invite(owner_api, portal, [{"email": "new@example.com"}])
    [run] = run_jobs(queues=["email"])

    assert response.status_code == 201
    assert "new@example.com" in members(portal)
    assert run.status == "retry"
    assert 9 <= (run.retry_at - timezone.now()).total_seconds() <= 10  # EMAIL_RETRY_SCHEDULE's first step
    [listed] = owner_api.get("/v1/customer-portal/invitations", HTTP_X_PORTAL_ID=str(portal.id)).json()
    assert (listed["delivery_status"], listed["delivery_attempts"]) == ("queued", 1)
    assert listed["delivery_error"].startswith("ConnectionRefusedError")


# 11 before e-mails were jobs: queueing them costs one statement, however many; the audit events (one per
# person) two more, however many: the chain head and one insert; their webhook deliveries one more (none here).
QUERIES_PER_INVITE = 15


@pytest.mark.parametrize("size", [10, 500])
def test_the_query_count_does_not_grow_with_the_batch(owner_api, portal, django_assert_num_queries, size):
    for index in range(size // 2):
        UserFactory(email=f"account{index}@example.com")
    users = [{"email": f"account{index}@example.com"} for index in range(size // 2)] + [
        {"email": f"new{index}@example.com"} for index in range(size - size // 2)
    ]

    info = (
        "account, portal, SET search_path, SAVEPOINT, settings, advisory lock, accounts, members, "
        "2 inserts, audit events (chain head, one insert for all, their webhook deliveries: one statement), "
        "the e-mail jobs (one statement for all), RELEASE"
    )
    with django_assert_num_queries(QUERIES_PER_INVITE, info=info):
        response = _invite(owner_api, portal, users)

    assert response.json()["linked"] == size // 2
    assert response.json()["invited"] == size - size // 2
    assert len(queued_jobs(task_name="deliver_portal_email")) == size


# Listing and removing -----------------------------------------------------------------


def test_list_returns_everyone_without_limit_and_a_page_with_it(owner_api, portal):
    _invite(owner_api, portal, [{"email": f"u{i}@example.com"} for i in range(5)])

    everyone = owner_api.get(f"/v1/portal/{portal.id}/users")
    page = owner_api.get(f"/v1/portal/{portal.id}/users?limit=2&offset=1")

    assert everyone.status_code == 200
    assert [user["email"] for user in everyone.json()] == [f"u{i}@example.com" for i in range(5)]
    assert everyone["X-Total-Count"] == "5"
    assert [user["email"] for user in page.json()] == ["u1@example.com", "u2@example.com"]
    assert page["X-Total-Count"] == "5"


@pytest.mark.parametrize("query", ["limit=0", "limit=x", "offset=-1"])
def test_bad_paging_is_422_in_the_query(owner_api, portal, query):
    response = owner_api.get(f"/v1/portal/{portal.id}/users?{query}")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "query"


def test_a_page_costs_the_same_queries_for_few_and_many_users(owner_api, portal, django_assert_num_queries):
    _invite(owner_api, portal, [{"email": f"u{i}@example.com"} for i in range(3)])
    info = "SET search_path, auth user, portal, SET search_path, page, count"
    with django_assert_num_queries(6, info=info):
        owner_api.get(f"/v1/portal/{portal.id}/users?limit=50")
    _invite(owner_api, portal, [{"email": f"more{i}@example.com"} for i in range(60)])
    with django_assert_num_queries(6, info=info):
        assert len(owner_api.get(f"/v1/portal/{portal.id}/users?limit=50").json()) == 50


def test_removing_a_user_drops_membership_sessions_and_invitations_but_not_the_account(owner_api, portal):
    account = UserFactory(email="known@example.com")
    body = _invite(owner_api, portal, [{"email": "known@example.com"}, {"email": "new@example.com"}]).json()
    linked_id, invited_id = (result["user"]["id"] for result in body["results"])
    with tenant_context(portal):
        PortalSession.objects.create(portal_user_id=linked_id, expires_at=timezone.now())

    first = owner_api.delete(f"/v1/portal/{portal.id}/users/{linked_id}")
    second = owner_api.delete(f"/v1/portal/{portal.id}/users/{linked_id}")
    invited = owner_api.delete(f"/v1/portal/{portal.id}/users/{invited_id}")

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
