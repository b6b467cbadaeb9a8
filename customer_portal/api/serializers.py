import datetime
from typing import Any

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from customer_portal.models import (
    SESSION_TIMEOUT_MAX_MINUTES,
    SESSION_TIMEOUT_MIN_MINUTES,
    Feature,
    Invitation,
    PortalSession,
    PortalSettings,
    PortalUser,
)
from customer_portal.selectors import invitation_effective_status
from portals.services import portal_host
from portalsite.api.serializers import InputSerializer
from portalsite.hostnames import is_hostname


@extend_schema_serializer(component_name="PortalUserResponse")
class PortalUserOutput(serializers.ModelSerializer):
    """Serializes model instances or `.values()` rows alike (see portal_user_list)."""

    # Times are UTC (API.md); a fixed zone spares a time-zone lookup per value on lists of thousands.
    invited_at = serializers.DateTimeField(read_only=True, default_timezone=datetime.UTC)
    joined_at = serializers.DateTimeField(read_only=True, default_timezone=datetime.UTC, allow_null=True)
    last_login_at = serializers.DateTimeField(read_only=True, default_timezone=datetime.UTC, allow_null=True)

    class Meta:
        model = PortalUser
        fields = ["id", "email", "name", "role", "status", "global_user_id", "invited_at", "joined_at", "last_login_at"]
        read_only_fields = fields


@extend_schema_serializer(component_name="SessionUser")
class SessionUserOutput(serializers.Serializer):
    id = serializers.UUIDField()
    email = serializers.EmailField()


@extend_schema_serializer(component_name="PortalSession")
class PortalSessionOutput(serializers.ModelSerializer):
    user = SessionUserOutput(source="portal_user")

    class Meta:
        model = PortalSession
        fields = ["id", "user", "created_at", "last_seen_at", "expires_at", "ip_address", "user_agent"]
        read_only_fields = fields


@extend_schema_serializer(component_name="PortalUserDetailResponse")
class PortalUserDetailOutput(PortalUserOutput):
    active_sessions = PortalSessionOutput(many=True, source="live_sessions")

    class Meta(PortalUserOutput.Meta):
        fields = [*PortalUserOutput.Meta.fields, "active_sessions"]
        read_only_fields = fields


@extend_schema_serializer(component_name="Feature")
class FeatureOutput(serializers.ModelSerializer):
    id = serializers.CharField(source="key")
    name = serializers.CharField()
    description = serializers.CharField()

    class Meta:
        model = Feature
        fields = ["id", "name", "description", "enabled", "updated_at"]
        read_only_fields = fields


@extend_schema_serializer(component_name="FeatureToggleRequest")
class FeatureToggleInput(InputSerializer):
    enabled = serializers.BooleanField(required=False)


@extend_schema_serializer(component_name="PortalSummary")
class PortalSummaryOutput(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    slug = serializers.CharField()
    domain = serializers.CharField()
    custom_domain = serializers.CharField(allow_null=True)


@extend_schema_serializer(component_name="PortalConfig")
class PortalConfigOutput(serializers.ModelSerializer):
    """The portal's settings; the view passes `portal` (a PortalSummary dict) and `features` in the context."""

    portal = serializers.SerializerMethodField()
    # Unset is "" (not null), so neither is documented with a `uri` or `email` format.
    logo_url = serializers.CharField(help_text="An http(s) URL, or empty when unset.")
    support_email = serializers.CharField(help_text="An e-mail address, or empty when unset.")
    features = serializers.SerializerMethodField()

    class Meta:
        model = PortalSettings
        fields = [
            "portal", "display_name", "logo_url", "primary_color", "welcome_message", "support_email",
            "allowed_email_domains", "session_timeout_minutes", "features", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(PortalSummaryOutput)
    def get_portal(self, _: PortalSettings) -> dict[str, Any]:
        return self.context["portal"]

    @extend_schema_field(FeatureOutput(many=True))
    def get_features(self, _: PortalSettings) -> list[dict[str, Any]]:
        return FeatureOutput(self.context["features"], many=True).data


@extend_schema_serializer(component_name="PortalConfigUpdateRequest")
class PortalConfigUpdateInput(InputSerializer):
    display_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    logo_url = serializers.URLField(required=False, allow_blank=True, max_length=500)
    primary_color = serializers.RegexField(
        r"^#[0-9a-fA-F]{6}$", required=False, error_messages={"invalid": "Use a colour such as #1f6feb."}
    )
    welcome_message = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    support_email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    allowed_email_domains = serializers.ListField(
        child=serializers.CharField(max_length=253), required=False, max_length=100
    )
    session_timeout_minutes = serializers.IntegerField(
        required=False, min_value=SESSION_TIMEOUT_MIN_MINUTES, max_value=SESSION_TIMEOUT_MAX_MINUTES
    )

    def validate_logo_url(self, value: str) -> str:
        if value and not value.lower().startswith(("https://", "http://")):
            raise serializers.ValidationError("Use an http(s) URL.")
        return value

    def validate_primary_color(self, value: str) -> str:
        return value.lower()

    def validate_allowed_email_domains(self, value: list[str]) -> list[str]:
        domains = list(dict.fromkeys(domain.strip().lower().lstrip("@") for domain in value))
        errors = {
            index: ["Enter a domain such as example.com."]
            for index, domain in enumerate(domains)
            if not is_hostname(domain)
        }
        if errors:
            raise serializers.ValidationError(errors)
        return domains


class PortalUserListQueryInput(serializers.Serializer):
    status = serializers.ChoiceField(choices=PortalUser.Status.choices, required=False)
    role = serializers.ChoiceField(choices=PortalUser.Role.choices, required=False)
    search = serializers.CharField(required=False, max_length=254)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=10_000)
    offset = serializers.IntegerField(required=False, min_value=0, default=0)


class InvitationListQueryInput(serializers.Serializer):
    status = serializers.ChoiceField(choices=[*Invitation.Status.values, "all"], default="pending")


@extend_schema_serializer(component_name="Invitation")
class InvitationOutput(serializers.ModelSerializer):
    email = serializers.EmailField(source="portal_user.email")
    name = serializers.CharField(source="portal_user.name")
    role = serializers.ChoiceField(source="portal_user.role", choices=PortalUser.Role.choices)
    status = serializers.SerializerMethodField()
    invited_by = serializers.CharField(help_text="The inviting admin's e-mail, or empty when no one (an operator).")

    class Meta:
        model = Invitation
        fields = ["id", "email", "name", "role", "status", "invited_by", "created_at", "expires_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=Invitation.Status.choices))
    def get_status(self, invitation: Invitation) -> str:
        return invitation_effective_status(invitation)


@extend_schema_serializer(component_name="PortalUserInviteItem")
class PortalUserInviteItemInput(InputSerializer):
    email = serializers.EmailField(max_length=254)
    name = serializers.CharField(required=False, allow_blank=True, max_length=150, default="")
    role = serializers.ChoiceField(choices=PortalUser.Role.choices, default=PortalUser.Role.MEMBER)


@extend_schema_serializer(component_name="PortalUserInviteOneRequest")
class PortalUserInviteOneInput(PortalUserInviteItemInput):
    """One contact, invited like an entry of the bulk invite."""


@extend_schema_serializer(component_name="InvitationCreateRequest")
class InvitationCreateInput(PortalUserInviteItemInput):
    message = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


@extend_schema_serializer(component_name="InvitationAcceptRequest")
class InvitationAcceptInput(InputSerializer):
    token = serializers.CharField(max_length=200)
    name = serializers.CharField(required=False, allow_blank=True, max_length=150, default="")
    password = serializers.CharField(max_length=1024, trim_whitespace=False, style={"input_type": "password"})


@extend_schema_serializer(component_name="PortalStats")
class PortalStatsOutput(serializers.Serializer):
    users = serializers.DictField(child=serializers.IntegerField())
    invitations = serializers.DictField(child=serializers.IntegerField())
    sessions = serializers.DictField(child=serializers.IntegerField())
    logins = serializers.DictField(child=serializers.IntegerField())
    features = serializers.DictField(child=serializers.IntegerField())


@extend_schema_serializer(component_name="MeResponse")
class MeOutput(serializers.Serializer):
    user = PortalUserOutput()
    portal = PortalSummaryOutput()
    session = PortalSessionOutput()


def portal_summary(portal: Any, domains: list[Any]) -> dict[str, Any]:
    return {
        "id": portal.id,
        "name": portal.name,
        "slug": portal.slug,
        "domain": portal_host(portal.slug),
        # Only a proven custom domain is the portal's address; a pending one is shown to org admins only.
        "custom_domain": next((domain.domain for domain in domains if domain.is_custom and domain.routes), None),
    }
