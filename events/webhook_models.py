"""Webhook endpoints and their deliveries (API.md "Webhooks"), in the public schema beside the audit events.

Registered through `events.models` (which imports this module), so their app is `events`.
"""

import uuid
from datetime import datetime

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from accounts.models import Organization


def every_event() -> list[str]:
    return ["*"]


class WebhookEndpoint(models.Model):
    """Where an organization's events go: a URL, the event patterns it wants, and its signing secret.

    `portal_id` (null: every portal of the organization, and the organization's own events) is a plain
    column, as on the events: `events` sits below `portals`. The secret is stored as is, because every
    delivery signs with it; it is shown only when made (create, rotate), never logged, never in an event.
    During a rotation `previous_secret` signs too, until `previous_secret_expires_at`.
    `failing_since` is the first failed try since the last success: past WEBHOOK_DISABLE_AFTER the
    endpoint is disabled.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="webhook_endpoints")
    portal_id = models.UUIDField(null=True, blank=True)
    url = models.CharField(max_length=2000)
    events = ArrayField(models.CharField(max_length=100), default=every_event)
    description = models.CharField(max_length=500, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    secret = models.CharField(max_length=100)
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["organization", "enabled"], name="events_webhook_org_enabled")]

    def __str__(self) -> str:
        return self.url

    def signing_secrets(self, *, now: datetime) -> list[str]:
        """The secrets a delivery made at `now` is signed with: the current one, and the previous one
        while its rotation's 24 hours last."""
        expires = self.previous_secret_expires_at
        if self.previous_secret and expires is not None and now < expires:
            return [self.secret, self.previous_secret]
        return [self.secret]


class WebhookDelivery(models.Model):
    """One event for one endpoint: the job that sends it, tried again along WEBHOOK_RETRY_SCHEDULE.

    `event_id` is the audit event's id (the `webhook-id` every try repeats) and is not a foreign key, so a
    delivery outlives the event's retention. The body's `data` is read from that event when sent; a
    `webhook.test` delivery is not an audit event and carries its `data` itself.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=64)
    data = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["endpoint", "-created_at", "-id"], name="events_webhookdelivery_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} to {self.endpoint_id}"


class WebhookAttempt(models.Model):
    """One try of a delivery: the endpoint's status code (null: no answer), how long it took, why it failed,
    and the first bytes of its answer (events.webhooks.RESPONSE_BODY_LIMIT, never the whole body)."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    attempted_at = models.DateTimeField()
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField()
    error = models.CharField(max_length=500, blank=True)
    response_excerpt = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["delivery", "attempted_at"], name="events_webhookattempt_delivery")]

    def __str__(self) -> str:
        return f"{self.response_status or 'no answer'} at {self.attempted_at:%Y-%m-%d %H:%M:%S}"
