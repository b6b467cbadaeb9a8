"""E-mail as jobs, against a real SMTP server on loopback: delivery, temporary and permanent failures,
retries on EMAIL_RETRY_SCHEDULE, idempotence, and nothing sent for a change that rolled back."""

import re
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import tenant_context
from procrastinate.contrib.django import app

from customer_portal.invite_rows import InviteEntry
from customer_portal.models import Invitation, PortalUser
from customer_portal.services import (
    invitation_get_by_token,
    invitation_resend,
    invitation_revoke,
    portal_users_invite,
)
from portals.models import Portal
from tests.factories import UserFactory
from tests.jobs import queued_jobs, run_jobs
from tests.smtp import SmtpServer

pytestmark = pytest.mark.django_db

GUEST = "guest@example.com"


def _invite(portal: Portal, *emails: str) -> None:
    with tenant_context(portal):
        portal_users_invite(portal=portal, entries=[InviteEntry(email=email) for email in emails], invited_by=None)


def _invitation(portal: Portal, email: str = GUEST) -> Invitation:
    with tenant_context(portal):
        return Invitation.objects.select_related("portal_user").get(portal_user__email=email)


def _deliver(*, advance: timedelta = timedelta(0)) -> list[str]:
    return [run.status for run in run_jobs(queues=["email"], advance=advance)]


def test_an_invitation_is_delivered_by_smtp_with_a_working_link(
    portal: Portal, smtp: SmtpServer, portal_host: str
) -> None:
    _invite(portal, GUEST)
    assert smtp.received() == []  # queued with the invite; a worker sends it

    assert _deliver() == ["succeeded"]

    [message] = smtp.received()
    assert message.recipients == [GUEST]
    assert message.subject == "You are invited to Acme"
    link = re.search(rf"http://{re.escape(portal_host)}:8000/invite/(\S+)", message.text())
    assert link and link.group(0) in message.html()
    invitation = _invitation(portal)
    assert message.message["Message-ID"].startswith(f"<{invitation.delivery_key}.invitation@")  # the same each try
    assert (invitation.delivery_status, invitation.delivery_attempts, invitation.delivery_error) == ("sent", 1, "")
    assert invitation.delivered_at is not None
    with tenant_context(portal):
        assert invitation_get_by_token(token=link.group(1)).id == invitation.id


def test_a_temporary_outage_is_retried_on_the_schedule_until_it_is_sent(portal: Portal, smtp: SmtpServer) -> None:
    smtp.stop()  # connection refused
    _invite(portal, GUEST)

    [refused] = run_jobs(queues=["email"])
    down = _invitation(portal)
    smtp.start()
    smtp.tempfail(1)  # back, but busy: 451 once
    assert _deliver() == []  # not due yet: the first retry waits 10 s
    [busy] = run_jobs(queues=["email"], advance=timedelta(seconds=10))
    still = _invitation(portal)
    [sent] = run_jobs(queues=["email"], advance=timedelta(seconds=60))

    assert refused.status == "retry" and busy.status == "retry" and sent.status == "succeeded"
    assert (down.delivery_status, down.delivery_attempts) == ("queued", 1)
    assert down.delivery_error.startswith("ConnectionRefusedError")
    assert (still.delivery_status, still.delivery_attempts) == ("queued", 2)
    assert still.delivery_error.startswith("451 4.3.0")
    delivered = _invitation(portal)
    assert (delivered.delivery_status, delivered.delivery_attempts, delivered.delivery_error) == ("sent", 3, "")
    assert [message.recipients for message in smtp.received()] == [[GUEST]]


def test_the_retry_delays_are_the_schedule(portal: Portal, smtp: SmtpServer, settings) -> None:
    settings.EMAIL_RETRY_SCHEDULE = [10, 60, 300]
    smtp.stop()
    _invite(portal, GUEST)

    delays = []
    for _ in range(3):
        [run] = run_jobs(queues=["email"], advance=timedelta(seconds=delays[-1] if delays else 0))
        assert run.retry_at is not None
        delays.append(round((run.retry_at - timezone.now()).total_seconds()))

    assert delays == [10, 60, 300]


def test_still_failing_at_the_end_of_the_schedule_is_failed_with_the_last_answer(
    portal: Portal, smtp: SmtpServer, settings
) -> None:
    settings.EMAIL_RETRY_SCHEDULE = [10]
    smtp.tempfail(10)
    _invite(portal, GUEST)

    first = _deliver()
    last = _deliver(advance=timedelta(seconds=10))

    assert first == ["retry"] and last == ["succeeded"]  # the job ran to its end; the e-mail did not go
    invitation = _invitation(portal)
    assert (invitation.delivery_status, invitation.delivery_attempts) == ("failed", 2)
    assert invitation.delivery_error.startswith("451 4.3.0")
    assert queued_jobs(task_name="deliver_portal_email") == [] and smtp.received() == []


def test_a_permanent_refusal_is_failed_at_once_with_the_servers_answer(portal: Portal, smtp: SmtpServer) -> None:
    smtp.refuse("nobody@example.com")
    _invite(portal, "nobody@example.com", GUEST)

    assert _deliver() == ["succeeded", "succeeded"]  # no retry for a 5xx

    refused = _invitation(portal, "nobody@example.com")
    assert (refused.delivery_status, refused.delivery_attempts) == ("failed", 1)
    assert refused.delivery_error == (
        "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in virtual mailbox table"
    )
    assert _invitation(portal).delivery_status == "sent"  # the other one of the batch went out
    assert queued_jobs(task_name="deliver_portal_email") == []


def test_no_message_for_a_change_that_rolled_back(portal: Portal, smtp: SmtpServer) -> None:
    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        _invite(portal, GUEST)
        assert len(queued_jobs(task_name="deliver_portal_email")) == 1
        raise Abort

    assert queued_jobs(task_name="deliver_portal_email") == []
    assert _deliver() == []
    assert smtp.received() == []


def test_a_message_already_accepted_is_never_sent_again(portal: Portal, smtp: SmtpServer) -> None:
    _invite(portal, GUEST)
    [job] = queued_jobs(task_name="deliver_portal_email")
    _deliver()

    # The same job once more, as if its worker had died after the server's 250 and it were run again.
    app.tasks["deliver_portal_email"].defer(**job.task_kwargs)
    assert _deliver() == ["succeeded"]

    assert len(smtp.received()) == 1
    assert _invitation(portal).delivery_attempts == 1


def test_resend_queues_a_new_message_with_a_new_link(portal: Portal, smtp: SmtpServer, portal_host: str) -> None:
    smtp.refuse(GUEST)
    _invite(portal, GUEST)
    _deliver()
    failed = _invitation(portal)
    smtp.accept(GUEST)  # the mailbox exists now

    with tenant_context(portal):
        resent = invitation_resend(portal=portal, invitation_id=failed.id)
    assert (resent.delivery_status, resent.delivery_attempts, resent.delivery_error) == ("queued", 0, "")
    _deliver()

    [message] = smtp.received()
    assert (_invitation(portal).delivery_status, _invitation(portal).delivery_key) == ("sent", resent.delivery_key)
    assert resent.delivery_key != failed.delivery_key and resent.token_hash != failed.token_hash
    assert f"http://{portal_host}:8000/invite/" in message.text()


def test_an_invitation_revoked_before_delivery_is_not_sent(portal: Portal, smtp: SmtpServer) -> None:
    _invite(portal, GUEST)
    with tenant_context(portal):
        invitation_revoke(invitation_id=_invitation(portal).id)

    assert _deliver() == ["succeeded"]

    assert smtp.received() == []
    revoked = _invitation(portal)
    assert revoked.delivery_status == "failed"
    assert revoked.delivery_error == "not sent: the invitation was revoked before it could be delivered; resend it"


def test_a_linked_account_gets_its_access_email_tracked_the_same_way(portal: Portal, smtp: SmtpServer) -> None:
    UserFactory(email="known@example.com")
    smtp.tempfail(1)
    _invite(portal, "known@example.com")

    assert _deliver() == ["retry"]
    assert _deliver(advance=timedelta(seconds=10)) == ["succeeded"]

    [message] = smtp.received()
    assert message.subject == "You now have access to Acme"
    with tenant_context(portal):
        member = PortalUser.objects.get(email="known@example.com")
    assert (member.delivery_status, member.delivery_attempts, member.delivery_error) == ("sent", 2, "")


def test_links_survive_a_secret_key_rotation_with_the_old_key_as_fallback(
    portal: Portal, smtp: SmtpServer, settings
) -> None:
    old_key = settings.SECRET_KEY
    _invite(portal, GUEST, "other@example.com")
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-key-" + "x" * 50, [old_key]
    first = run_jobs(queues=["email"], limit=1)  # one message under the fallback
    settings.SECRET_KEY_FALLBACKS = []  # the old key retired before the other message went out
    second = _deliver()

    assert [run.status for run in first] + second == ["succeeded", "succeeded"]
    assert len(smtp.received()) == 1
    statuses = sorted(_invitation(portal, email).delivery_status for email in (GUEST, "other@example.com"))
    assert statuses == ["failed", "sent"]
    with tenant_context(portal):
        failed = Invitation.objects.get(delivery_status="failed")
    assert "SECRET_KEY changed" in failed.delivery_error
