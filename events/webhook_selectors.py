"""Reads of webhook endpoints and deliveries, scoped to the organizations a caller administers."""

import uuid
from collections.abc import Collection

from django.db.models import Prefetch, QuerySet

from events.webhook_models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from portalsite.errors import NotFoundError, uuid_or_not_found


def webhook_endpoint_list(*, organization_ids: Collection[uuid.UUID]) -> QuerySet[WebhookEndpoint]:
    """The endpoints of these organizations, oldest first."""
    return WebhookEndpoint.objects.filter(organization_id__in=organization_ids).order_by("created_at", "id")


def webhook_endpoint_get(*, organization_ids: Collection[uuid.UUID], endpoint_id: uuid.UUID | str) -> WebhookEndpoint:
    """The endpoint, if one of these organizations has it; NotFoundError otherwise (foreign looks missing)."""
    endpoint = (
        webhook_endpoint_list(organization_ids=organization_ids).filter(id=uuid_or_not_found(endpoint_id)).first()
    )
    if endpoint is None:
        raise NotFoundError()
    return endpoint


def webhook_delivery_list(*, endpoint: WebhookEndpoint, status: str | None, limit: int) -> list[WebhookDelivery]:
    """The endpoint's deliveries, newest first, each with its tries (oldest first): two queries."""
    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint)
    if status:
        deliveries = deliveries.filter(status=status)
    attempts = Prefetch("attempt_log", queryset=WebhookAttempt.objects.order_by("attempted_at", "id"))
    return list(deliveries.order_by("-created_at", "-id").prefetch_related(attempts)[:limit])


def webhook_delivery_get(*, endpoint: WebhookEndpoint, delivery_id: uuid.UUID | str) -> WebhookDelivery:
    delivery = WebhookDelivery.objects.filter(endpoint=endpoint, id=uuid_or_not_found(delivery_id)).first()
    if delivery is None:
        raise NotFoundError()
    return delivery
