"""Jobs of the customer_portal app: e-mail delivery, one job per message, and the periodic housekeeping."""

import logging

from procrastinate.job_context import JobContext

from customer_portal.emails import DELIVER_TASK, EmailKind, portal_email_deliver
from customer_portal.services import portal_housekeeping_each
from portals.selectors import portal_list_all
from portalsite.jobs import EMAIL_QUEUE, EMAIL_RETRY, app, periodic_job

logger = logging.getLogger(__name__)


@app.task(name=DELIVER_TASK, queue=EMAIL_QUEUE, pass_context=True, retry=EMAIL_RETRY)
def deliver_portal_email(context: JobContext, *, portal_id: str, kind: EmailKind, row_id: str, key: str) -> str:
    """Send one queued e-mail (see customer_portal.emails.portal_email_deliver). A temporary failure raises:
    the job runs again after the next step of EMAIL_RETRY_SCHEDULE; on the schedule's last step it is final."""
    last_try = EMAIL_RETRY.delay(attempts=context.job.attempts) is None
    return portal_email_deliver(portal_id=portal_id, kind=kind, row_id=row_id, key=key, last_try=last_try)


@periodic_job("portal_housekeeping")
def portal_housekeeping(timestamp: int) -> None:
    """What `cleanup_portals` does, across every portal."""
    summary = portal_housekeeping_each(portals=portal_list_all())
    logger.info(
        "housekeeping of %d portals: %d invitations expired, %d sessions ended%s",
        summary.portals,
        summary.invitations_expired,
        summary.sessions_ended,
        f"; failed: {', '.join(summary.failed)}" if summary.failed else "",
    )
