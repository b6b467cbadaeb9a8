"""Faults and races: a failure at any point leaves nothing half-written; concurrent invites collapse."""

import logging
import re
import threading

import pytest
from django.core import mail
from django.db import connection
from django_tenants.utils import tenant_context
from rest_framework.test import APIClient

from customer_portal.models import Invitation, PortalUser
from customer_portal.services import InviteEntry, portal_users_invite
from portals.models import Domain, Portal
from portals.services import portal_delete

pytestmark = pytest.mark.django_db


def _schema_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [name])
        return cursor.fetchone() is not None


@pytest.fixture
def portal(admin_client) -> Portal:
    response = admin_client.post("/v1/portal", {"name": "Acme", "custom_domain": "portal.acme.com"}, format="json")
    return Portal.objects.get(id=response.json()["id"])


def test_a_failure_mid_delete_leaves_the_portal_whole(portal, monkeypatch):
    def fail(hosts: object) -> None:
        raise RuntimeError("injected failure after the schema was dropped")

    monkeypatch.setattr("portals.services.routing_forget_on_commit", fail)
    with pytest.raises(RuntimeError):
        portal_delete(portal=portal)

    assert _schema_exists(portal.schema_name)
    assert Portal.objects.filter(id=portal.id).exists()
    assert set(Domain.objects.filter(tenant=portal).values_list("domain", flat=True)) == {
        "acme.localhost", "portal.acme.com"
    }  # fmt: skip
    with tenant_context(portal):
        assert PortalUser.objects.count() == 0  # the schema's tables answer


def test_a_failure_mid_bulk_invite_writes_nothing(portal, admin_client, monkeypatch):
    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("injected failure after the portal users were inserted")

    monkeypatch.setattr(Invitation.objects, "bulk_create", fail)
    client = APIClient(HTTP_HOST="localhost")
    client.credentials(HTTP_AUTHORIZATION=admin_client._credentials["HTTP_AUTHORIZATION"])
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


def test_mail_down_during_an_invite_then_resend_works(
    portal, admin, settings, caplog, django_capture_on_commit_callbacks
):
    from tests.conftest import bearer_client

    on_portal = bearer_client(admin, host="acme.localhost")
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2  # nothing listens
    with caplog.at_level(logging.ERROR), django_capture_on_commit_callbacks(execute=True):
        created = on_portal.post("/v1/customer-portal/invitations", {"email": "guest@example.com"}, format="json")
    assert created.status_code == 201
    assert "sending 1 portal e-mail(s)" in caplog.text

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # the mail server is back
    with django_capture_on_commit_callbacks(execute=True):
        resent = on_portal.post(f"/v1/customer-portal/invitations/{created.json()['id']}/resend")

    assert resent.status_code == 200
    token = re.search(r"/invite/(\S+)", mail.outbox[-1].body).group(1)
    accepted = APIClient(HTTP_HOST="acme.localhost").post(
        "/v1/customer-portal/invitations/accept", {"token": token, "password": "a-Long-passphrase-42"}, format="json"
    )
    assert accepted.status_code == 200
