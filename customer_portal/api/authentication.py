from typing import Any

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication

from customer_portal.tokens import token_portal_session


class PortalAwareJWTAuthentication(JWTAuthentication):
    """simplejwt's bearer auth, plus the portal-scoped tokens issued on a portal host.

    Such a token names its portal and session: it works only on that portal, and only
    while the session is live and the membership active (one indexed query per request),
    so logging out, ending the session or revoking access takes effect at once.
    """

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        result = super().authenticate(request)
        if result is not None:
            request._request.portal_session = token_portal_session(token=result[1], request=request._request)
        return result


class PortalAwareJWTScheme(SimpleJWTScheme):
    """OpenAPI: the same bearer scheme as simplejwt's."""

    target_class = PortalAwareJWTAuthentication
