"""E-mails to portal users, rendered from templates/customer_portal/email/ and sent after commit."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string
from django_tenants.utils import tenant_context

from customer_portal.selectors import portal_settings_get
from portals.models import Portal

logger = logging.getLogger(__name__)

_SUBJECTS = {
    "invitation": "You are invited to {portal}",
    "access_granted": "You now have access to {portal}",
}


@dataclass(frozen=True)
class PortalEmail:
    kind: Literal["invitation", "access_granted"]
    to: str
    name: str = ""
    token: str = ""
    message: str = ""


def portal_url(portal: Portal, path: str) -> str:
    """An absolute URL on the portal's host: its custom domain once verified, else its default domain."""
    port = f":{settings.PORTAL_URL_PORT}" if settings.PORTAL_URL_PORT else ""
    return f"{settings.PORTAL_URL_SCHEME}://{portal.link_domain}{port}{path}"


def portal_emails_send(*, portal: Portal, emails: Sequence[PortalEmail]) -> None:
    """Render and send over one connection. Failures are logged, never raised: the invite stands
    and the invitation can be resent."""
    try:
        with tenant_context(portal):
            portal_settings = portal_settings_get()
        display_name = portal_settings.display_name or portal.name
        home = portal_url(portal, "/")
        messages = []
        for email in emails:
            context = {
                "portal_name": display_name,
                "primary_color": portal_settings.safe_primary_color,
                "logo_url": portal_settings.logo_url,
                "support_email": portal_settings.support_email,
                "name": email.name,
                "message": email.message,
                "link": portal_url(portal, f"/invite/{email.token}") if email.token else home,
                "expires_days": settings.PORTAL_INVITATION_TTL.days,
            }
            message = EmailMultiAlternatives(
                subject=_SUBJECTS[email.kind].format(portal=display_name),
                body=render_to_string(f"customer_portal/email/{email.kind}.txt", context),
                to=[email.to],
            )
            message.attach_alternative(
                render_to_string(f"customer_portal/email/{email.kind}.html", context), "text/html"
            )
            messages.append(message)
        with get_connection() as connection:
            connection.send_messages(messages)
    except Exception:
        logger.exception("sending %d portal e-mail(s) for portal %s failed", len(emails), portal.slug)
