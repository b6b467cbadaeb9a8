"""Bearer tokens on both API groups: account tokens (org admins) and portal-scoped ones (portal logins)."""

import functools
import uuid
from typing import Any

from django.http import HttpRequest
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.models import TokenUser
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.utils import aware_utcnow

from accounts.models import User
from accounts.permissions import request_admin_organization_ids
from accounts.selectors import account_get_with_admin_organizations
from customer_portal.api.portal import request_names_a_portal, request_portal
from customer_portal.audit import member_actor
from customer_portal.models import PortalSession
from customer_portal.services import portal_session_touch
from customer_portal.tokens import PORTAL_CLAIM, SESSION_CLAIM
from events.context import audit_actor_set
from portalsite.requests import django_request

VERIFIED_TOKENS_KEPT = 1024  # per worker: about 1 MB


def token_portal_session(*, token: Token, request: HttpRequest | Request) -> PortalSession | None:
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


def request_portal_session(request: HttpRequest | Request) -> PortalSession | None:
    """The portal session a portal-scoped token authenticated this request with (None for anyone else)."""
    return getattr(django_request(request), "portal_session", None)


@functools.lru_cache(maxsize=VERIFIED_TOKENS_KEPT)
def _verified_token(raw_token: bytes) -> Token:
    return JWTAuthentication().get_validated_token(raw_token)


class PortalAwareJWTAuthentication(JWTAuthentication):
    """simplejwt's bearer auth, plus the portal-scoped tokens issued on a portal host.

    Such a token names its portal and session: it works only on that portal, and only
    while the session is live and the membership active (one indexed query per request),
    so logging out, ending the session or revoking access takes effect at once.
    """

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = self.get_header(request)
        raw_token = self.get_raw_token(header) if header is not None else None
        if raw_token is None:
            return None
        token = self.get_validated_token(raw_token)
        session = token_portal_session(token=token, request=request)
        if session is None:
            return self._account(token, request), token  # an account-level token (org admins)
        django_request(request).portal_session = session  # type: ignore[attr-defined]
        audit_actor_set(member_actor(session.portal_user))
        # The session query already proved the account active: no second lookup for the user.
        return TokenUser(token), token

    def _account(self, token: Token, request: Request) -> User:
        """simplejwt's `get_user`, reading the organizations the account administers in the same query (the
        permissions of every admin request ask for them)."""
        if api_settings.CHECK_REVOKE_TOKEN:
            user = self.get_user(token)  # simplejwt's own check of a changed password
            assert isinstance(user, User)
            return user
        try:
            user_id = uuid.UUID(str(token[api_settings.USER_ID_CLAIM]))
        except (KeyError, ValueError) as exc:
            raise InvalidToken("Token contained no recognizable user identification") from exc
        found = account_get_with_admin_organizations(user_id=user_id)
        if found is None:
            raise AuthenticationFailed("User not found", code="user_not_found")
        account, organization_ids = found
        if api_settings.CHECK_USER_IS_ACTIVE and not account.is_active:
            raise AuthenticationFailed("User is inactive", code="user_inactive")
        request_admin_organization_ids(request, read=lambda: organization_ids)
        return account

    def get_validated_token(self, raw_token: bytes) -> Token:
        """simplejwt's validation, the signature verified once per token and worker: the same bytes always
        verify the same way (a token that fails is never kept). Its expiry is checked on every request."""
        token = _verified_token(bytes(raw_token))
        try:
            token.check_exp(current_time=aware_utcnow())
        except TokenError:
            return super().get_validated_token(raw_token)  # raises simplejwt's own error for an expired token
        return token


class PortalAwareJWTScheme(SimpleJWTScheme):
    """OpenAPI: the same bearer scheme as simplejwt's."""

    target_class = "customer_portal.api.authentication.PortalAwareJWTAuthentication"
