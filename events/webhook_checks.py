"""`check --deploy`: the development switches of the webhook URL policy must be off in production."""

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register


@register(Tags.security, deploy=True)
def webhook_policy_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """With DEBUG off, WEBHOOK_ALLOW_HTTP sends events in clear text and WEBHOOK_ALLOW_PRIVATE_NETWORKS lets any
    org admin make the workers POST to loopback and internal addresses (server-side request forgery)."""
    if settings.DEBUG:
        return []
    switches = [name for name in ("WEBHOOK_ALLOW_HTTP", "WEBHOOK_ALLOW_PRIVATE_NETWORKS") if getattr(settings, name)]
    return [
        Warning(
            f"{name} is on with DEBUG=false: it is for development and tests only.",
            hint="Unset it in production (API.md, 'Webhooks').",
            id="events.W001",
        )
        for name in switches
    ]
