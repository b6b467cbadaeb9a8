"""Portal-scoped JWTs: an account's token pair plus the portal and session it was issued for.

Such a token is good only on its own portal, and only while its session is live.
"""

from django.http import HttpRequest
from django.utils import timezone
from django_tenants.utils import tenant_context
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.tokens import RefreshToken, Token

from accounts.models import User
from customer_portal.api.portal import request_names_a_portal, request_portal
from customer_portal.models import PortalSession
from customer_portal.services import portal_session_touch
from portals.models import Portal

PORTAL_CLAIM = "portal_id"
SESSION_CLAIM = "session_id"


def token_pair(*, user: User, portal: Portal | None = None, session: PortalSession | None = None) -> dict[str, str]:
    """An access/refresh pair; with a portal session, both carry its portal and session ids."""
    refresh = RefreshToken.for_user(user)
    if portal is not None and session is not None:
        refresh[PORTAL_CLAIM] = str(portal.id)
        refresh[SESSION_CLAIM] = str(session.id)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def token_portal_session(*, token: Token, request: HttpRequest) -> PortalSession | None:
    """For a portal-scoped token: its live session, checked against the request's portal.

    Returns None for an account-level token; raises AuthenticationFailed (401) when the token is
    for another portal or its session has ended. Leaves the connection on the token's portal.
    """
    portal_id = token.get(PORTAL_CLAIM)
    if portal_id is None:
        return None
    portal = request_portal(request) if request_names_a_portal(request) else None
    if portal is None or str(portal.id) != portal_id:
        raise AuthenticationFailed("This token is for another portal.", code="wrong_portal")
    session = portal_session_touch(session_id=token.get(SESSION_CLAIM), global_user_id=token.get("user_id"))
    if session is None:
        raise AuthenticationFailed("The portal session has ended.", code="session_ended")
    return session


def token_portal_session_end(*, token: Token) -> None:
    """Logout of a portal-scoped token: end its session in its portal (already ended: nothing to do)."""
    portal = Portal.objects.filter(id=token.get(PORTAL_CLAIM), is_spare=False).first()
    if portal is None:
        return  # the portal is gone, and its sessions with it
    with tenant_context(portal):
        PortalSession.objects.filter(id=token.get(SESSION_CLAIM), ended_at__isnull=True).update(ended_at=timezone.now())
