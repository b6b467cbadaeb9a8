"""Jobs of the accounts app: org admins' password-reset e-mails, and the periodic ones (settings.PERIODIC_JOBS)."""

import logging

from procrastinate.job_context import JobContext

from accounts.models import User
from accounts.password_reset import DELIVER_TASK, reset_email_render
from accounts.services import expired_tokens_flush
from portalsite.jobs import EMAIL_QUEUE, EMAIL_RETRY, app, periodic_job
from portalsite.mail import PermanentDeliveryFailure, mail_send

logger = logging.getLogger(__name__)


@periodic_job("flush_expired_tokens")
def flush_expired_tokens(timestamp: int) -> None:
    deleted = expired_tokens_flush()
    logger.info("deleted %d expired refresh-token records", deleted)


@app.task(name=DELIVER_TASK, queue=EMAIL_QUEUE, pass_context=True, retry=EMAIL_RETRY)
def deliver_account_password_reset(context: JobContext, *, user_id: str, host: str) -> str:
    """Send an org admin's reset e-mail, with a token made now. A temporary failure raises (tried again on
    EMAIL_RETRY_SCHEDULE); anything else is final."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return "not sent: the account is gone or inactive"
    try:
        mail_send(reset_email_render(user=user, host=host))
    except PermanentDeliveryFailure as exc:
        logger.warning("password reset e-mail for account %s failed: %s", user_id, exc)
        return f"failed: {exc}"
    return "sent"
