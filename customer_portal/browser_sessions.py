"""Browser sign-ins on a portal host: a PortalSession behind an HttpOnly, SameSite=Lax cookie for that host.

The cookie holds the session's id and account id, signed with the SECRET_KEY under a salt naming the portal
(an admin who sees session ids cannot forge one; a cookie from one portal means nothing on another), and
stamped, so it is refused JWT_SESSION_MAX_AGE after the sign-in whatever the session says. Each request
that asks (the pages) checks the session with the one query a token's check costs (`portal_session_touch`):
ending the session anywhere (the API, the admin, /account, revocation, removal) signs the browser out at
its next request.
"""

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse

from customer_portal.audit import member_actor
from customer_portal.models import PortalSession
from customer_portal.services import portal_session_touch
from events.context import audit_actor_set
from portals.models import Portal
from portalsite.requests import request_memo


def _salt(portal: Portal) -> str:
    return f"customer_portal.browser-session:{portal.id}"


def browser_session_start(response: HttpResponse, *, portal: Portal, session: PortalSession) -> None:
    """Sign the browser in with `session` (its `portal_user` loaded)."""
    value = f"{session.id}:{session.portal_user.global_user_id}"
    response.set_signed_cookie(
        settings.PORTAL_SESSION_COOKIE,
        value,
        salt=_salt(portal),
        max_age=int(settings.JWT_SESSION_MAX_AGE.total_seconds()),
        httponly=True,
        secure=settings.SESSION_COOKIE_SECURE,
        samesite="Lax",
    )


def browser_session_clear(response: HttpResponse) -> None:
    response.delete_cookie(settings.PORTAL_SESSION_COOKIE, samesite="Lax")


def request_browser_session(request: HttpRequest, portal: Portal) -> PortalSession | None:
    """The live session this browser is signed in with (its `portal_user` loaded), or None; once per request."""
    return request_memo(request, "browser_session", lambda: _session_of(request, portal))


def _session_of(request: HttpRequest, portal: Portal) -> PortalSession | None:
    if settings.PORTAL_SESSION_COOKIE not in request.COOKIES:
        return None
    try:
        value = request.get_signed_cookie(
            settings.PORTAL_SESSION_COOKIE,
            salt=_salt(portal),
            max_age=settings.JWT_SESSION_MAX_AGE,
        )
    except (KeyError, signing.BadSignature):
        return None
    if value is None:
        return None
    session_id, _, account_id = value.partition(":")
    session = portal_session_touch(session_id=session_id, global_user_id=account_id)
    if session is not None:
        audit_actor_set(member_actor(session.portal_user))  # what this request changes, the member did
    return session
