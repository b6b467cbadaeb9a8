"""Periodic jobs of the accounts app (see settings.PERIODIC_JOBS)."""

import logging

from accounts.services import expired_tokens_flush
from portalsite.jobs import periodic_job

logger = logging.getLogger(__name__)


@periodic_job("flush_expired_tokens")
def flush_expired_tokens(timestamp: int) -> None:
    deleted = expired_tokens_flush()
    logger.info("deleted %d expired refresh-token records", deleted)
