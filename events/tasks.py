"""Jobs of the events app: pruning the trail past its retention."""

import logging

from events.verification import audit_events_prune
from portalsite.jobs import periodic_job

logger = logging.getLogger(__name__)


@periodic_job("audit_prune")
def audit_prune(timestamp: int) -> None:
    """Daily: delete the events older than AUDIT_RETENTION_DAYS (each chain keeps its anchor)."""
    pruned = audit_events_prune()
    if pruned:
        logger.info("pruned %d audit event(s) older than the retention", pruned)
