import uuid

from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    """One change, as API.md's `AuditEvent`, plus its place in its organization's hash chain.

    `organization_id` and `portal_id` are plain columns, not foreign keys: the trail outlives the portal (and
    whatever else it names). Rows are written only by `events.services` and never updated.
    """

    class ActorType(models.TextChoices):
        USER = "user"
        PORTAL_USER = "portal_user"
        OPERATOR = "operator"
        SYSTEM = "system"

    class Via(models.TextChoices):
        API = "api"
        ADMIN = "admin"
        CLI = "cli"
        PORTAL = "portal"
        SYSTEM = "system"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    occurred_at = models.DateTimeField(default=timezone.now)
    action = models.CharField(max_length=64)
    organization_id = models.UUIDField()
    portal_id = models.UUIDField(null=True, blank=True)
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_email = models.CharField(max_length=254, blank=True)
    via = models.CharField(max_length=16, choices=Via.choices)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=255, blank=True)
    changes = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    # The chain: seq counts the organization's events from 1; hash is SHA-256 of the event's canonical JSON,
    # which includes prev_hash (the hash of event seq - 1, "" for the first).
    seq = models.BigIntegerField()
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization_id", "seq"], name="events_auditevent_org_seq_unique"),
        ]
        indexes = [
            # Newest first, per organization and per portal (the lists); oldest first reads them backwards.
            # (No index on the actor's e-mail: that filter runs within an organization, and a bulk write of a
            # thousand events would pay for one more index entry each.)
            models.Index(fields=["organization_id", "-occurred_at", "-seq"], name="events_audit_org_time"),
            models.Index(fields=["portal_id", "-occurred_at", "-seq"], name="events_audit_portal_time"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.target_type} {self.target_label}".strip()


class AuditChain(models.Model):
    """The head of one organization's chain: its last `seq` and `hash`. Every writer locks this row (the
    upsert in `record_many`), so concurrent writers in one organization take turns and the chain cannot fork.

    After pruning, `pruned_seq` and `pruned_hash` are those of the last event removed: the oldest kept event
    must follow them, so removing old events by hand is still detected.
    """

    organization_id = models.UUIDField(primary_key=True)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, blank=True)
    pruned_seq = models.BigIntegerField(default=0)
    pruned_hash = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"chain of {self.organization_id} at {self.seq}"


# The webhook models live in their own module; importing them here registers them with the app.
from events.webhook_models import WebhookAttempt, WebhookDelivery, WebhookEndpoint  # noqa: E402

__all__ = ["AuditChain", "AuditEvent", "WebhookAttempt", "WebhookDelivery", "WebhookEndpoint"]
