"""/v1/webhooks as routed: `events.api.webhooks`, told which organization a portal belongs to."""

import uuid

from events.api import webhooks
from portals.selectors import portal_routable


class WebhookViewSet(webhooks.WebhookViewSet):
    def portal_organization_id(self, portal_id: uuid.UUID) -> uuid.UUID | None:
        portal = portal_routable(portal_id=portal_id)
        return None if portal is None else portal.organization_id
