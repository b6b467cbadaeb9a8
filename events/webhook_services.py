"""Webhook endpoints (register, change, rotate, test, delete) and sending one delivery (the job's work).

Every change to an endpoint records its `webhook_endpoint.*` event in the same transaction; the secret
never appears in one (nor in a log line). A delivery is tried by `webhook_delivery_attempt`, once per
job run, along WEBHOOK_RETRY_SCHEDULE; an endpoint whose every try has failed for
WEBHOOK_DISABLE_AFTER is disabled (a `webhook_endpoint.disabled` event, by the system).
"""

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Organization
from events.chain import audit_event_data, timestamp
from events.context import SYSTEM, Actor, audit_context_get
from events.models import AuditEvent
from events.services import Target, record
from events.webhook_models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from events.webhook_queue import webhook_delivery_new, webhook_jobs_queue
from events.webhooks import WebhookAttemptResult, webhook_body, webhook_secret_new, webhook_send, webhook_url_validate
from portalsite.errors import ApplicationError

logger = logging.getLogger(__name__)

ROTATION_OVERLAP = timedelta(hours=24)  # the previous secret signs too, this long after a rotation
TEST_EVENT = "webhook.test"
UNSET: Any = object()


class WebhookDeliveryFailed(Exception):
    """A try failed and the delivery will be tried again (the job's retry strategy catches this)."""


def _target(endpoint: WebhookEndpoint) -> Target:
    return Target(type="webhook_endpoint", id=str(endpoint.id), label=endpoint.url[:255])


def _record(endpoint: WebhookEndpoint, action: str, changes: dict[str, Any], *, actor: Actor | None = None) -> None:
    """The endpoint's `webhook_endpoint.*` event, about its portal when it is limited to one."""
    record(
        action=action,
        organization_id=endpoint.organization_id,
        portal_id=endpoint.portal_id,
        target=_target(endpoint),
        changes=changes,
        actor=actor,
    )


def _disabled_error() -> ApplicationError:
    return ApplicationError("The endpoint is disabled: enable it first.", status=409)


# Endpoints -------------------------------------------------------------------------------------


@transaction.atomic
def webhook_endpoint_create(
    *,
    organization: Organization,
    url: str,
    events: Sequence[str] | None = None,
    description: str = "",
    portal_id: uuid.UUID | None = None,
) -> WebhookEndpoint:
    """Register an endpoint of `organization` (limited to `portal_id`, a portal of it, when given) with a
    new secret. The URL is checked against the policy now (a 422 on `url`)."""
    webhook_url_validate(url)
    now = timezone.now()
    endpoint = WebhookEndpoint.objects.create(
        organization=organization,
        portal_id=portal_id,
        url=url,
        events=list(events) if events is not None else ["*"],
        description=description,
        secret=webhook_secret_new(),
        created_at=now,
        updated_at=now,
    )
    _record(endpoint, "webhook_endpoint.created", {})
    return endpoint


@transaction.atomic
def webhook_endpoint_update(
    *,
    endpoint: WebhookEndpoint,
    url: str = UNSET,
    events: Sequence[str] = UNSET,
    description: str = UNSET,
    enabled: bool = UNSET,
) -> WebhookEndpoint:
    """Change what is given; `changes` in the event names each field that changed. Enabling a disabled
    endpoint clears why it was disabled and its run of failures. Lock: the endpoint's row."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    wanted: dict[str, Any] = {"url": url, "events": list(events) if events is not UNSET else UNSET}
    wanted.update(description=description, enabled=enabled)
    changes = {
        name: [getattr(endpoint, name), value]
        for name, value in wanted.items()
        if value is not UNSET and getattr(endpoint, name) != value
    }
    if not changes:
        return endpoint
    if "url" in changes:
        webhook_url_validate(url)
    for name, (_, value) in changes.items():
        setattr(endpoint, name, value)
    if changes.get("enabled") == [False, True]:
        endpoint.disabled_reason, endpoint.failing_since = "", None
    endpoint.updated_at = timezone.now()
    endpoint.save()
    _record(endpoint, "webhook_endpoint.updated", changes)
    return endpoint


@transaction.atomic
def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """A new secret; the current one keeps signing (as the second signature) for ROTATION_OVERLAP, so
    receivers can switch without losing a delivery. Lock: the endpoint's row."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    now = timezone.now()
    before = endpoint.previous_secret_expires_at
    endpoint.previous_secret, endpoint.secret = endpoint.secret, webhook_secret_new()
    endpoint.previous_secret_expires_at = now + ROTATION_OVERLAP
    endpoint.updated_at = now
    endpoint.save()
    # When the old key stops signing: the event says a rotation happened without carrying either key.
    _record(
        endpoint, "webhook_endpoint.updated", {"previous_key_expires_at": [before, endpoint.previous_secret_expires_at]}
    )
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Delete the endpoint and its deliveries (their queued jobs find nothing to send)."""
    gone = WebhookEndpoint(
        id=endpoint.id, organization_id=endpoint.organization_id, portal_id=endpoint.portal_id, url=endpoint.url
    )
    endpoint.delete()  # first: the endpoint does not get its own deletion
    _record(gone, "webhook_endpoint.deleted", {})


@transaction.atomic
def webhook_endpoint_test(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Queue a `webhook.test` delivery to this endpoint only. It is not an audit event (it changes
    nothing): its `data` is shaped as one, with this request's actor, and is kept on the delivery."""
    if not endpoint.enabled:
        raise _disabled_error()
    context, now = audit_context_get(), timezone.now()
    actor = context.current_actor()
    event = AuditEvent(
        id=uuid.uuid4(),
        occurred_at=now,
        action=TEST_EVENT,
        organization_id=endpoint.organization_id,
        portal_id=endpoint.portal_id,
        actor_type=actor.type,
        actor_id=actor.id,
        actor_email=actor.email,
        via=context.via,
        ip_address=context.ip_address,
        user_agent=context.user_agent[:512],
        target_type="webhook_endpoint",
        target_id=str(endpoint.id),
        target_label=endpoint.url[:255],
        changes={},
        request_id=context.request_id,
    )
    return webhook_delivery_new(
        endpoint=endpoint, event_id=event.id, event_type=TEST_EVENT, data=audit_event_data(event), now=now
    )


@transaction.atomic
def webhook_delivery_retry(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Try this delivery once more now, whatever became of it (a manual retry: one try of its own). A pending
    delivery keeps its schedule: if the manual try fails, the next scheduled one still comes.
    Lock: the delivery's row."""
    delivery = WebhookDelivery.objects.select_for_update().select_related("endpoint").get(pk=delivery.pk)
    if not delivery.endpoint.enabled:
        raise _disabled_error()
    if delivery.status != WebhookDelivery.Status.PENDING:
        delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.PENDING, None
        delivery.save(update_fields=["status", "next_attempt_at"])
    webhook_jobs_queue(delivery_ids=[delivery.id], once=True)
    return delivery


def webhook_deliveries_prune(*, now: datetime | None = None) -> int:
    """Delete the deliveries made more than WEBHOOK_DELIVERY_RETENTION_DAYS ago that ended (succeeded or
    failed), with their tries; a pending one is kept until it ends. Returns how many were deleted."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.WEBHOOK_DELIVERY_RETENTION_DAYS)
    ended = WebhookDelivery.objects.filter(created_at__lt=cutoff).exclude(status=WebhookDelivery.Status.PENDING)
    _, by_model = ended.delete()
    return by_model.get(WebhookDelivery._meta.label, 0)


# Sending (the job) -----------------------------------------------------------------------------


def webhook_delivery_attempt(*, delivery_id: str, retry_in: int | None, manual: bool = False) -> str:
    """Try one delivery and record how it went; returns what happened, for the worker's log.

    Idempotent: a delivery that succeeded (or was deleted, or whose endpoint is disabled) is not sent
    again. A failed try with `retry_in` seconds to the next one stays `pending` and raises
    WebhookDeliveryFailed (the job runs again then); without, the delivery is `failed`, unless this is a
    `manual` try of a delivery whose schedule still has a try to come.

    Lock contract: the delivery's row is locked while it is sent (at most WEBHOOK_TIMEOUT), so two runs
    of one delivery never send it at once; the try is counted, in a transaction of its own, before. The
    endpoint's row is locked only after a failed try, to count its run of failures.
    """
    with transaction.atomic():
        delivery, reason = _current(delivery_id)
        if delivery is None:
            return reason
        delivery.attempts += 1
        delivery.save(update_fields=["attempts"])
    with transaction.atomic():
        delivery, reason = _current(delivery_id)
        if delivery is None:
            return reason
        endpoint, now = delivery.endpoint, timezone.now()
        body = _body(delivery)
        if body is None:  # not the endpoint's failure: its run of failures is left alone
            result = WebhookAttemptResult(None, "Not sent: the event is no longer in the audit log.", "", 0)
            retry_in, delivery.next_attempt_at = None, None
        else:
            result = webhook_send(
                url=endpoint.url,
                event_id=str(delivery.event_id),
                body=body,
                signing_secrets=endpoint.signing_secrets(now=now),
                at=now,
            )
        WebhookAttempt.objects.create(
            delivery=delivery,
            attempted_at=now,
            response_status=result.status_code,
            duration_ms=result.duration_ms,
            error=result.error,
            response_excerpt=result.response_excerpt,
        )
        if result.succeeded:
            _endpoint_succeeded(endpoint)
        elif body is not None and _endpoint_failed(endpoint, now=now):
            retry_in, delivery.next_attempt_at = None, None  # disabled just now: no further try
        _record_outcome(delivery, result, now=now, retry_in=retry_in, manual=manual)
    if result.succeeded:
        return f"delivered: HTTP {result.status_code}"
    logger.warning("webhook %s to endpoint %s failed: %s", delivery_id, endpoint.id, result.error)
    if retry_in is not None:
        raise WebhookDeliveryFailed(result.error)
    return f"failed: {result.error}"


def _current(delivery_id: str) -> tuple[WebhookDelivery | None, str]:
    """The delivery, locked, if it is still to be sent; else None and why not (a disabled endpoint's
    pending delivery is `failed` here)."""
    delivery = (
        WebhookDelivery.objects.select_for_update(of=("self",))
        .select_related("endpoint")
        .filter(id=delivery_id)
        .first()
    )
    if delivery is None:
        return None, "not sent: the delivery or its endpoint was deleted"
    if delivery.status != WebhookDelivery.Status.PENDING:
        return None, f"not sent again: it {delivery.status}"
    if not delivery.endpoint.enabled:
        delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.FAILED, None
        delivery.save(update_fields=["status", "next_attempt_at"])
        return None, "not sent: the endpoint is disabled"
    return delivery, ""


def _body(delivery: WebhookDelivery) -> str | None:
    """The signed body: the audit event as the API shows it (or the test event the delivery carries)."""
    data = delivery.data
    if data is None:
        event = AuditEvent.objects.filter(id=delivery.event_id).first()
        if event is None:
            return None
        data = audit_event_data(event)
    return webhook_body(
        event_id=str(delivery.event_id), event_type=delivery.event_type, timestamp=data["occurred_at"], data=data
    )


def _record_outcome(
    delivery: WebhookDelivery, result: WebhookAttemptResult, *, now: datetime, retry_in: int | None, manual: bool
) -> None:
    delivery.response_status = result.status_code
    delivery.last_attempt_at = now
    scheduled = delivery.next_attempt_at
    if result.succeeded:
        delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.SUCCEEDED, None
    elif retry_in is not None:
        delivery.next_attempt_at = now + timedelta(seconds=retry_in)
    elif not (manual and scheduled is not None):  # a failed manual try leaves a scheduled one to decide
        delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.FAILED, None
    delivery.save(update_fields=["response_status", "last_attempt_at", "status", "next_attempt_at"])


def _endpoint_succeeded(endpoint: WebhookEndpoint) -> None:
    """A success ends the endpoint's run of failures (no row is written, or locked, when there was none)."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=False).update(failing_since=None)


def _endpoint_failed(endpoint: WebhookEndpoint, *, now: datetime) -> bool:
    """Count a failed try in the endpoint's run of failures; past WEBHOOK_DISABLE_AFTER, disable it and
    record `webhook_endpoint.disabled` (by the system). True when it was disabled just now."""
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    if not endpoint.enabled:
        return False
    if endpoint.failing_since is None:
        endpoint.failing_since = now
        endpoint.save(update_fields=["failing_since"])
    if now - endpoint.failing_since < settings.WEBHOOK_DISABLE_AFTER:
        return False
    endpoint.enabled = False
    endpoint.disabled_reason = (
        f"Every delivery failed from {timestamp(endpoint.failing_since)} to {timestamp(now)} "
        f"(WEBHOOK_DISABLE_AFTER: {settings.WEBHOOK_DISABLE_AFTER.total_seconds():g} s)."
    )
    endpoint.updated_at = now
    endpoint.save(update_fields=["enabled", "disabled_reason", "updated_at"])
    _record(endpoint, "webhook_endpoint.disabled", {"enabled": [True, False]}, actor=SYSTEM)
    return True
