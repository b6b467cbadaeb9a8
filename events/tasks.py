"""Jobs of the events app: pruning the trail past its retention; webhook deliveries, one job per (event,
endpoint), and their pruning."""

import logging

from procrastinate.job_context import JobContext

from events.verification import audit_events_prune
from events.webhook_queue import DELIVER_ONCE_TASK, DELIVER_TASK, WEBHOOK_QUEUE
from events.webhook_services import WebhookDeliveryFailed, webhook_deliveries_prune, webhook_delivery_attempt
from portalsite.jobs import ScheduledRetry, app, periodic_job

logger = logging.getLogger(__name__)

WEBHOOK_RETRY = ScheduledRetry(setting="WEBHOOK_RETRY_SCHEDULE", retry_on=(WebhookDeliveryFailed,))


@periodic_job("audit_prune")
def audit_prune(timestamp: int) -> None:
    """Daily: delete the events older than AUDIT_RETENTION_DAYS (each chain keeps its anchor)."""
    pruned = audit_events_prune()
    if pruned:
        logger.info("pruned %d audit event(s) older than the retention", pruned)


@app.task(name=DELIVER_TASK, queue=WEBHOOK_QUEUE, pass_context=True, retry=WEBHOOK_RETRY)
def deliver_webhook(context: JobContext, *, delivery_id: str) -> str:
    """Try one delivery (events.webhook_services.webhook_delivery_attempt). A failed try raises, and the job
    runs again after the next step of WEBHOOK_RETRY_SCHEDULE; on the schedule's last step it is final."""
    return webhook_delivery_attempt(
        delivery_id=delivery_id, retry_in=WEBHOOK_RETRY.delay(attempts=context.job.attempts)
    )


@app.task(name=DELIVER_ONCE_TASK, queue=WEBHOOK_QUEUE)
def deliver_webhook_once(*, delivery_id: str) -> str:
    """A manual retry: one try of the delivery, `failed` again if it fails."""
    return webhook_delivery_attempt(delivery_id=delivery_id, retry_in=None, manual=True)


@periodic_job("prune_webhook_deliveries")
def prune_webhook_deliveries(timestamp: int) -> None:
    logger.info("%d webhook deliveries past WEBHOOK_DELIVERY_RETENTION_DAYS deleted", webhook_deliveries_prune())
