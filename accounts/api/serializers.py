from typing import Any

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers
from rest_framework_simplejwt.serializers import PasswordField, TokenObtainSerializer

from accounts.models import User
from portalsite.api.serializers import AnySerializer, InputSerializer, RejectUnknownFieldsMixin

# Long enough for any real password; short enough that hashing it is cheap.
PASSWORD_MAX_LENGTH = 1024


@extend_schema_serializer(component_name="TokenObtainRequest")
class TokenObtainInput(RejectUnknownFieldsMixin, TokenObtainSerializer):
    """E-mail and password; validation authenticates (`.user`), the view issues the tokens."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["email"] = serializers.CharField(write_only=True, max_length=254)
        self.fields["password"] = PasswordField(max_length=PASSWORD_MAX_LENGTH)

    @property
    def account(self) -> User:
        """The account the e-mail and password authenticated (once `is_valid()` said so)."""
        assert isinstance(self.user, User)
        return self.user


@extend_schema_serializer(component_name="LogoutRequest")
class LogoutInput(InputSerializer):
    refresh = serializers.CharField(max_length=4096)
    everywhere = serializers.BooleanField(
        default=False, help_text="End every refresh token and portal session of the account, not only this one."
    )


@extend_schema_serializer(component_name="TokenPairResponse")
class TokenPairOutput(AnySerializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


@extend_schema_serializer(component_name="EmptyResponse")
class EmptyOutput(AnySerializer):
    """`{}`: the operation succeeded and there is nothing to return."""


class EmailInput(InputSerializer):
    email = serializers.EmailField(max_length=254)


@extend_schema_serializer(component_name="PasswordForgotRequest")
class PasswordForgotInput(EmailInput):
    """The account's e-mail address; the answer is the same whether or not it has one."""


@extend_schema_serializer(component_name="PasswordResetRequest")
class PasswordResetInput(InputSerializer):
    token = serializers.CharField(max_length=200, help_text="The secret of the e-mailed link (its last segment).")
    password = PasswordField(max_length=PASSWORD_MAX_LENGTH)
