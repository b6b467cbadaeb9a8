"""Jobs of the customer_portal app: the periodic housekeeping of every portal."""

import logging

from customer_portal.services import portal_housekeeping_each
from portals.selectors import portal_list_all
from portalsite.jobs import periodic_job

logger = logging.getLogger(__name__)


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
