from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.serializers import PasswordField, TokenObtainSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.tokens import RefreshToken

from customer_portal.tokens import token_portal_session
from portalsite.api.serializers import InputSerializer, RejectUnknownFieldsMixin

# Long enough for any real password; short enough that hashing it is cheap.
PASSWORD_MAX_LENGTH = 1024


@extend_schema_serializer(component_name="TokenObtainRequest")
class TokenObtainInput(RejectUnknownFieldsMixin, TokenObtainSerializer):
    """E-mail and password; validation authenticates (`.user`), the view issues the tokens."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["email"] = serializers.CharField(write_only=True, max_length=254)
        self.fields["password"] = PasswordField(max_length=PASSWORD_MAX_LENGTH)


@extend_schema_serializer(component_name="TokenRefreshRequest")
class TokenRefreshInput(RejectUnknownFieldsMixin, TokenRefreshSerializer):
    """Rotates the refresh token; a portal-scoped one only on its portal and while its session is live."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        try:
            token_portal_session(token=RefreshToken(attrs["refresh"]), request=self.context["request"]._request)
            return super().validate(attrs)
        except TokenError as exc:  # simplejwt's view translates this; we call the serializer directly
            raise InvalidToken(exc.args[0]) from exc
        except get_user_model().DoesNotExist as exc:  # the account was deleted after the token was issued
            raise AuthenticationFailed(self.error_messages["no_active_account"], "no_active_account") from exc


@extend_schema_serializer(component_name="LogoutRequest")
class LogoutInput(InputSerializer):
    refresh = serializers.CharField(max_length=4096)


@extend_schema_serializer(component_name="TokenPairResponse")
class TokenPairOutput(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


@extend_schema_serializer(component_name="EmptyResponse")
class EmptyOutput(serializers.Serializer):
    """`{}`: the operation succeeded and there is nothing to return."""
