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

from accounts.api.serializers import (
    EmptyOutput,
    LogoutInput,
    PasswordForgotInput,
    PasswordResetInput,
    TokenObtainInput,
    TokenPairOutput,
)
from accounts.api.throttles import AuthRateThrottle, email_throttle_wait
from accounts.lockout import lockout_seconds
from accounts.services import (
    account_login,
    account_password_reset,
    account_password_reset_request,
    account_sign_out_everywhere,
    refresh_token_revoke,
)
from accounts.tokens import ChainedRefreshToken, refresh_token_decode
from customer_portal.api.authentication import token_portal_session
from customer_portal.api.portal import request_names_a_portal, request_portal, request_portal_host
from customer_portal.api.serializers import EmailLinkInput, EmailLinkVerifyInput
from customer_portal.errors import CustomerPortalError
from customer_portal.models import SignInToken
from customer_portal.services import (
    INVALID_LINK,
    email_sign_in_by_code,
    email_sign_in_by_link,
    password_reset,
    portal_session_open,
    sign_in_token_request,
)
from customer_portal.tokens import PORTAL_CLAIM, portal_token_pair, token_portal_session_end
from portalsite.api.serializers import ErrorResponseSerializer, RejectUnknownFieldsMixin
from portalsite.errors import NotFoundError
from portalsite.hostnames import request_hostname
from portalsite.requests import client_details


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
_SIGN_IN_REFUSED = OpenApiResponse(ErrorResponseSerializer, "The link or code is wrong, used or expired")
_SENT = OpenApiResponse(
    EmptyOutput, "Accepted: an e-mail goes out if the address has an account here (no hint either way)"
)
_CREDENTIAL_ACTIONS = ("token", "refresh", "password_forgot", "password_reset", "email_link", "email_link_verify")


def _email_budget(email: str, request: Request) -> None:
    """Throttled (429) past EMAIL_THROTTLE_RATE e-mails to this address, whoever asks."""
    wait = email_throttle_wait(email=email, request=request)
    if wait is not None:
        raise Throttled(wait=wait)


class AuthViewSet(viewsets.ViewSet):
    """JWT pairs: obtain with e-mail and password, refresh (rotating), log out."""

    authentication_classes: list[type[BaseAuthentication]] = []  # these endpoints take credentials in the body
    permission_classes = [permissions.AllowAny]

    def get_authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'  # a refused login is a 401 with the scheme, not a 403

    def get_throttles(self) -> list[BaseThrottle]:
        return [AuthRateThrottle()] if self.action in _CREDENTIAL_ACTIONS else []

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
        session = portal_session_open(user=user, **client_details(request))
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

    @extend_schema(
        operation_id="auth_password_forgot",
        summary="E-mail a password-reset link",
        description="On a portal's host (or with X-Portal-ID) for the portal's active members, on the API host for "
        "org admins. Always 202: nothing says whether the address has an account. The link goes to "
        "`/password/reset/<token>` on the host asked on and expires after PASSWORD_RESET_TTL.",
        request=PasswordForgotInput,
        responses={202: _SENT},
    )
    def password_forgot(self, request: Request) -> Response:
        data = PasswordForgotInput(data=request.data)
        data.is_valid(raise_exception=True)
        email = data.validated_data["email"]
        _email_budget(email, request)
        if request_names_a_portal(request):
            portal = request_portal(request)
            purpose = SignInToken.Purpose.PASSWORD_RESET
            sign_in_token_request(portal=portal, email=email, purpose=purpose, host=request_portal_host(request))
        else:
            account_password_reset_request(email=email, host=request_hostname(request))
        return Response({}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        operation_id="auth_password_reset",
        summary="Set a new password with the e-mailed link's token",
        description="Single use. Every session and refresh token of the account ends. A token that is not live "
        "(used, replaced, expired, unknown) is a 422 at `token`; a password the validators refuse, at `password`.",
        request=PasswordResetInput,
        responses={200: EmptyOutput},
    )
    def password_reset(self, request: Request) -> Response:
        data = PasswordResetInput(data=request.data)
        data.is_valid(raise_exception=True)
        token, password = data.validated_data["token"], data.validated_data["password"]
        if not request_names_a_portal(request):
            account_password_reset(token=token, password=password)
            return Response({})
        request_portal(request)
        try:
            password_reset(token=token, password=password)
        except NotFoundError:
            raise CustomerPortalError(INVALID_LINK, loc=("token",)) from None
        return Response({})

    @extend_schema(
        operation_id="auth_email_link",
        summary="E-mail a sign-in link and code",
        description="Portal hosts. Always 202; an active member gets an e-mail with a link (`/login/email/<token>`, "
        "15 minutes) and a 6-digit code (10 minutes, 5 tries).",
        request=EmailLinkInput,
        responses={202: _SENT},
    )
    def email_link(self, request: Request) -> Response:
        data = EmailLinkInput(data=request.data)
        data.is_valid(raise_exception=True)
        portal = request_portal(request)
        _email_budget(data.validated_data["email"], request)
        sign_in_token_request(
            portal=portal,
            email=data.validated_data["email"],
            purpose=SignInToken.Purpose.EMAIL_SIGN_IN,
            host=request_portal_host(request),
        )
        return Response({}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        operation_id="auth_email_link_verify",
        summary="Sign in with the e-mailed link's token, or with the e-mail and code",
        description="Opens a portal session, as a password login does. The link and its code work once together.",
        request=EmailLinkVerifyInput,
        responses={200: TokenPairOutput, 401: _SIGN_IN_REFUSED},
    )
    def email_link_verify(self, request: Request) -> Response:
        data = EmailLinkVerifyInput(data=request.data)
        data.is_valid(raise_exception=True)
        portal = request_portal(request)
        values = data.validated_data
        if "token" in values:
            user, session = email_sign_in_by_link(token=values["token"], **client_details(request))
        else:
            user, session = email_sign_in_by_code(email=values["email"], code=values["code"], **client_details(request))
        return Response(portal_token_pair(user=user, portal=portal, session=session))
