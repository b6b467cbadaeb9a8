"""/v1/webhooks as routed: `events.api.webhooks`, told which organization a portal belongs to."""

import uuid

from events.api import webhooks
from portals.models import Portal


class WebhookViewSet(webhooks.WebhookViewSet):
    def portal_organization_id(self, portal_id: uuid.UUID) -> uuid.UUID | None:
        found: uuid.UUID | None = (
            Portal.objects.filter(id=portal_id, is_spare=False).values_list("organization_id", flat=True).first()
        )
        return found
