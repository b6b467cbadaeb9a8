"""/v1/auth: token pairs for both kinds of login (an account on the API host, a portal login on a portal's host),
refresh and logout. It lives here, the top layer, because it knows both kinds of token."""

from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import permissions, status, viewsets
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.serializers import TokenRefreshSerializer

from accounts.api.serializers import EmptyOutput, LogoutInput, TokenObtainInput, TokenPairOutput
from accounts.api.throttles import AuthRateThrottle
from accounts.lockout import lockout_seconds
from accounts.services import account_login, account_sign_out_everywhere, refresh_token_revoke
from accounts.tokens import ChainedRefreshToken, refresh_token_decode
from customer_portal.api.authentication import token_portal_session
from customer_portal.api.portal import request_names_a_portal, request_portal
from customer_portal.services import portal_session_open
from customer_portal.tokens import PORTAL_CLAIM, portal_token_pair, token_portal_session_end
from portalsite.api.serializers import ErrorResponseSerializer, RejectUnknownFieldsMixin


@extend_schema_serializer(component_name="TokenRefreshRequest")
class TokenRefreshInput(RejectUnknownFieldsMixin, TokenRefreshSerializer):
    """Rotates the refresh token; a portal-scoped one only on its portal and while its session is live, and
    none past JWT_SESSION_MAX_AGE after the login that started its chain."""

    token_class = ChainedRefreshToken

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        try:
            token_portal_session(token=refresh_token_decode(attrs["refresh"]), request=self.context["request"])
            return super().validate(attrs)
        except TokenError as exc:  # simplejwt's view translates this; we call the serializer directly
            raise InvalidToken(exc.args[0]) from exc
        except get_user_model().DoesNotExist as exc:  # the account was deleted after the token was issued
            raise AuthenticationFailed(self.error_messages["no_active_account"], "no_active_account") from exc


LOCKED_OUT = "Too many failed logins for this account or from this address; try again later."
_BAD_CREDENTIALS = OpenApiResponse(ErrorResponseSerializer, "Wrong e-mail or password, or no active membership here")
_BAD_TOKEN = OpenApiResponse(ErrorResponseSerializer, "Malformed, expired or revoked refresh token")


class AuthViewSet(viewsets.ViewSet):
    """JWT pairs: obtain with e-mail and password, refresh (rotating), log out."""

    authentication_classes: list[type[BaseAuthentication]] = []  # these endpoints take credentials in the body
    permission_classes = [permissions.AllowAny]

    def get_authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'  # a refused login is a 401 with the scheme, not a 403

    def get_throttles(self) -> list[BaseThrottle]:
        return [AuthRateThrottle()] if self.action in ("token", "refresh") else []

    @extend_schema(
        operation_id="auth_token",
        summary="Obtain an access and refresh token pair",
        description="On a portal's host (or with X-Portal-ID) this is a portal login: it needs an active "
        "membership there, opens a portal session, and the tokens work on that portal only.",
        request=TokenObtainInput,
        responses={200: TokenPairOutput, 401: _BAD_CREDENTIALS},
    )
    def token(self, request: Request) -> Response:
        serializer = TokenObtainInput(data=request.data, context={"request": request})
        try:
            serializer.is_valid(raise_exception=True)
        except AuthenticationFailed:
            # django-axes refused the attempt (the account or this address failed too often): say so, with
            # when to try again, instead of the plain 401 a wrong password gets.
            if getattr(request, "axes_locked_out", False):
                raise Throttled(wait=lockout_seconds(), detail=LOCKED_OUT) from None
            raise
        user = serializer.account
        if not request_names_a_portal(request):
            return Response(account_login(user=user))
        portal = request_portal(request)  # a portal login opens a session there
        session = portal_session_open(
            user=user, ip_address=request.META.get("REMOTE_ADDR"), user_agent=request.META.get("HTTP_USER_AGENT", "")
        )
        return Response(portal_token_pair(user=user, portal=portal, session=session))

    @extend_schema(
        operation_id="auth_token_refresh",
        summary="Exchange a refresh token for a new pair (the old refresh token is revoked)",
        request=TokenRefreshInput,
        responses={200: TokenPairOutput, 401: _BAD_TOKEN},
    )
    def refresh(self, request: Request) -> Response:
        serializer = TokenRefreshInput(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        return Response(serializer.validated_data)

    @extend_schema(
        operation_id="auth_logout",
        summary="Revoke a refresh token",
        request=LogoutInput,
        responses={200: EmptyOutput, 401: _BAD_TOKEN},
    )
    def logout(self, request: Request) -> Response:
        serializer = LogoutInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        token = refresh_token_revoke(refresh=serializer.validated_data["refresh"])
        if token.get(PORTAL_CLAIM):
            token_portal_session_end(token=token)
        if serializer.validated_data["everywhere"]:
            account_sign_out_everywhere(user_id=token["user_id"])
        return Response({}, status=status.HTTP_200_OK)
