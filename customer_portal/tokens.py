"""Portal-scoped JWTs: an account's token pair (`accounts.tokens`) plus the portal and session it was issued for.

Such a token is good only on its own portal, and only while its session is live
(`customer_portal.api.authentication` checks both on every request).
"""

import contextlib

from django_tenants.utils import tenant_context
from rest_framework_simplejwt.tokens import Token

from accounts.models import User
from accounts.tokens import token_pair
from customer_portal.models import PortalSession
from customer_portal.services import portal_session_end
from portals.models import Portal
from portalsite.errors import NotFoundError

PORTAL_CLAIM = "portal_id"
SESSION_CLAIM = "session_id"


def portal_token_pair(*, user: User, portal: Portal, session: PortalSession) -> dict[str, str]:
    """An access/refresh pair for a portal login: both carry its portal and session ids."""
    return token_pair(user=user, claims={PORTAL_CLAIM: str(portal.id), SESSION_CLAIM: str(session.id)})


def token_portal_session_end(*, token: Token) -> None:
    """Logout of a portal-scoped token: end its session in its portal (already ended: nothing to do)."""
    portal = Portal.objects.filter(id=token.get(PORTAL_CLAIM), is_spare=False).first()
    if portal is None:
        return  # the portal is gone, and its sessions with it
    with tenant_context(portal), contextlib.suppress(NotFoundError):  # ended already: nothing to do
        portal_session_end(session_id=str(token.get(SESSION_CLAIM)), by_its_user=True)
