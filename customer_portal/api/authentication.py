from typing import Any

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.models import TokenUser

from customer_portal.tokens import token_portal_session


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
        session = token_portal_session(token=token, request=request._request)
        if session is None:
            return self.get_user(token), token  # an account-level token (org admins)
        request._request.portal_session = session
        # The session query already proved the account active: no second lookup for the user.
        return TokenUser(token), token


class PortalAwareJWTScheme(SimpleJWTScheme):
    """OpenAPI: the same bearer scheme as simplejwt's."""

    target_class = PortalAwareJWTAuthentication
