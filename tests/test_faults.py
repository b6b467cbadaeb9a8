"""Faults and races: a failure at any point leaves nothing half-written; concurrent invites collapse."""

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from customer_portal.models import Invitation, PortalUser
from customer_portal.services import InviteEntry, portal_users_invite
from portals.models import Domain, Portal
from portals.services import portal_delete, portal_update
from tests.conftest import invite_token, schema_exists
from tests.jobs import run_jobs

pytestmark = pytest.mark.django_db


def test_a_failure_mid_delete_leaves_the_portal_whole(portal, monkeypatch):
    portal = portal_update(portal=portal, name=None, custom_domain="portal.acme.com")

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("injected failure after the schema was dropped")

    monkeypatch.setattr("portals.services.routing_forget_on_commit", fail)
    with pytest.raises(RuntimeError):
        portal_delete(portal=portal)

    assert schema_exists(portal.schema_name)
    assert Portal.objects.filter(id=portal.id).exists()
    assert set(Domain.objects.filter(tenant=portal).values_list("domain", flat=True)) == {
        "acme.localhost", "portal.acme.com"
    }  # fmt: skip
    with tenant_context(portal):
        assert PortalUser.objects.count() == 0  # the schema's tables answer


def test_a_failure_mid_bulk_invite_writes_nothing(portal, owner_api, monkeypatch):
    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("injected failure after the portal users were inserted")

    monkeypatch.setattr(Invitation.objects, "bulk_create", fail)
    client = owner_api
    client.raise_request_exception = False

    response = client.post(
        f"/v1/portal/{portal.id}/users", {"users": [{"email": f"u{i}@example.com"} for i in range(5)]}, format="json"
    )

    assert response.status_code == 500
    with tenant_context(portal):
        assert PortalUser.objects.count() == 0
        assert Invitation.objects.count() == 0


def test_concurrent_invites_of_the_same_emails_end_as_one_membership_each(test_portal):
    emails = [f"race{i}@example.com" for i in range(20)]
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def invite(offset: int) -> None:
        try:
            batch = emails[offset:] + emails[:offset]  # the same people, in another order
            barrier.wait()
            with tenant_context(test_portal):
                portal_users_invite(
                    portal=test_portal, entries=[InviteEntry(email=e) for e in batch], invited_by=None, send_email=False
                )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=invite, args=(offset,)) for offset in (0, 7, 13)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert not errors, errors
        with tenant_context(test_portal):
            rows = list(PortalUser.objects.filter(email__startswith="race").values_list("email", flat=True))
            invitations = Invitation.objects.filter(portal_user__email__startswith="race").count()
        assert sorted(rows) == sorted(emails)
        assert invitations == len(emails)
    finally:

        def clean() -> None:
            try:
                with tenant_context(test_portal):
                    PortalUser.objects.filter(email__startswith="race").delete()
            finally:
                connection.close()

        cleaner = threading.Thread(target=clean)
        cleaner.start()
        cleaner.join(timeout=60)


def test_mail_down_during_an_invite_then_resend_sends_only_the_new_link(
    portal, owner_on_portal, portal_host, mail_down, settings
):
    on_portal = owner_on_portal
    created = on_portal.post("/v1/customer-portal/invitations", {"email": "guest@example.com"}, format="json")
    [first_try] = run_jobs(queues=["email"])
    assert created.status_code == 201
    assert first_try.status == "retry"  # the first message waits for its next try

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # the mail server is back
    resent = on_portal.post(f"/v1/customer-portal/invitations/{created.json()['id']}/resend")
    runs = run_jobs(queues=["email"], advance=timedelta(hours=1))  # the new message, and the old one's retry

    assert resent.status_code == 200
    assert sorted(run.status for run in runs) == ["succeeded", "succeeded"]
    [message] = mail.outbox  # the old message, replaced, was never sent
    token = invite_token(message)
    accepted = APIClient(HTTP_HOST=portal_host).post(
        "/v1/customer-portal/invitations/accept", {"token": token, "password": "a-Long-passphrase-42"}, format="json"
    )
    assert accepted.status_code == 200
