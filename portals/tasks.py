"""Jobs of the portals app: topping up the spare-schema pool, checking pending custom domains."""

import contextlib
import logging

from django.db import transaction

from portals.domain_verification import custom_domains_verify_pending
from portals.provisioning import spare_pool_refill
from portalsite.jobs import AlreadyEnqueued, periodic_job

logger = logging.getLogger(__name__)


@periodic_job("spare_pool_refill")
def spare_pool_refill_job(timestamp: int | None = None) -> None:
    """Top the pool up to PORTAL_SPARE_POOL_SIZE (periodically, and after each create)."""
    created = spare_pool_refill()
    if created:
        logger.info("made %d spare schema(s)", created)


def spare_pool_refill_later() -> None:
    """Queue a refill inside the current transaction: it commits with the create that took a spare, or
    rolls back with it. One refill waits in the queue at most (a second create finds it there: nothing
    to add) and one runs at a time across every worker (the task's queueing lock and lock)."""
    # The savepoint keeps the queueing lock's unique violation from aborting the caller's transaction.
    with contextlib.suppress(AlreadyEnqueued), transaction.atomic():
        spare_pool_refill_job.defer()


@periodic_job("custom_domains_check")
def custom_domains_check(timestamp: int) -> None:
    """Every DOMAIN_CHECK_INTERVAL: each pending custom domain's TXT record looked up; stale ones failed."""
    summary = custom_domains_verify_pending()
    if summary.checked:
        logger.info(
            "checked %d pending custom domain(s): %d verified, %d failed, %d still pending",
            summary.checked, len(summary.verified), len(summary.failed), len(summary.still_pending),
        )  # fmt: skip
