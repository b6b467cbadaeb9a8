import datetime
from typing import Any

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from accounts.api.serializers import EmailInput
from customer_portal.invite_rows import InviteEntry
from customer_portal.models import (
    HEX_COLOR_VALIDATOR,
    SESSION_TIMEOUT_MAX_MINUTES,
    SESSION_TIMEOUT_MIN_MINUTES,
    Feature,
    Invitation,
    PortalSession,
    PortalSettings,
    PortalUser,
)
from customer_portal.services import InviteOutcome
from portals.models import Portal
from portalsite.api.serializers import AnySerializer, InputSerializer, limit_field, offset_field
from portalsite.hostnames import is_hostname


@extend_schema_serializer(component_name="PortalUserResponse")
class PortalUserOutput(serializers.ModelSerializer[Any]):  # PortalUser instances or `.values()` rows
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
class SessionUserOutput(AnySerializer):
    id = serializers.UUIDField()
    email = serializers.EmailField()


@extend_schema_serializer(component_name="PortalSession")
class PortalSessionOutput(serializers.ModelSerializer[PortalSession]):
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
class FeatureOutput(serializers.ModelSerializer[Feature]):
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
class PortalSummaryOutput(AnySerializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    slug = serializers.CharField()
    domain = serializers.CharField()
    custom_domain = serializers.CharField(allow_null=True)


@extend_schema_serializer(component_name="PortalConfig")
class PortalConfigOutput(serializers.ModelSerializer[PortalSettings]):
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
        summary: dict[str, Any] = self.context["portal"]
        return summary

    @extend_schema_field(FeatureOutput(many=True))
    def get_features(self, _: PortalSettings) -> list[dict[str, Any]]:
        return list(FeatureOutput(self.context["features"], many=True).data)


@extend_schema_serializer(component_name="PortalConfigUpdateRequest")
class PortalConfigUpdateInput(InputSerializer):
    display_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    logo_url = serializers.URLField(required=False, allow_blank=True, max_length=500)
    primary_color = serializers.CharField(required=False, validators=[HEX_COLOR_VALIDATOR])
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
            raise serializers.ValidationError(errors)  # type: ignore[arg-type]  # by index: the handler puts it in loc
        return domains


class PortalUserListQueryInput(AnySerializer):
    status = serializers.ChoiceField(choices=PortalUser.Status.choices, required=False)
    role = serializers.ChoiceField(choices=PortalUser.Role.choices, required=False)
    search = serializers.CharField(required=False, max_length=254)
    limit = limit_field()
    offset = offset_field()


class InvitationListQueryInput(AnySerializer):
    status = serializers.ChoiceField(choices=[*Invitation.Status.values, "all"], default="pending")
    delivery_status = serializers.ChoiceField(
        choices=Invitation.DeliveryStatus.choices,
        required=False,
        help_text="Only invitations whose e-mail is queued, sent or failed (say, `failed` with `status=all`).",
    )


@extend_schema_serializer(component_name="Invitation")
class InvitationOutput(serializers.ModelSerializer[Invitation]):
    email = serializers.EmailField(source="portal_user.email")
    name = serializers.CharField(source="portal_user.name")
    role = serializers.ChoiceField(source="portal_user.role", choices=PortalUser.Role.choices)
    status = serializers.SerializerMethodField()
    invited_by = serializers.CharField(help_text="The inviting admin's e-mail, or empty when no one (an operator).")

    delivery_status = serializers.SerializerMethodField(
        help_text="Where its e-mail stands: `queued` (waiting for a worker, or for its next try), `sent` (accepted "
        "by the mail server), `failed` (refused, or still failing after EMAIL_RETRY_SCHEDULE); null when it was "
        "made without one (`send_email: false`)."
    )
    delivery_error = serializers.SerializerMethodField(
        help_text="The mail server's answer to the last failed try (or why it was not sent), else null."
    )

    class Meta:
        model = Invitation
        fields = [
            "id",
            "email",
            "name",
            "role",
            "status",
            "invited_by",
            "created_at",
            "expires_at",
            "delivery_status",
            "delivery_attempts",
            "delivered_at",
            "delivery_error",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=Invitation.Status.choices))
    def get_status(self, invitation: Invitation) -> str:
        return invitation.effective_status

    @extend_schema_field(serializers.ChoiceField(choices=Invitation.DeliveryStatus.choices, allow_null=True))
    def get_delivery_status(self, invitation: Invitation) -> str | None:
        return invitation.delivery_status or None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_delivery_error(self, invitation: Invitation) -> str | None:
        return invitation.delivery_error or None


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
class PortalStatsOutput(AnySerializer):
    users = serializers.DictField(child=serializers.IntegerField())
    invitations = serializers.DictField(child=serializers.IntegerField())
    invitation_emails = serializers.DictField(
        child=serializers.IntegerField(), help_text="Invitations by where their e-mail stands: queued, sent, failed."
    )
    sessions = serializers.DictField(child=serializers.IntegerField())
    logins = serializers.DictField(child=serializers.IntegerField())
    features = serializers.DictField(child=serializers.IntegerField())


@extend_schema_serializer(component_name="MeResponse")
class MeOutput(AnySerializer):
    user = PortalUserOutput()
    portal = PortalSummaryOutput()
    session = PortalSessionOutput()


def portal_summary(portal: Portal) -> dict[str, Any]:
    return {
        "id": portal.id,
        "name": portal.name,
        "slug": portal.slug,
        "domain": portal.default_domain,
        # Only a proven custom domain is the portal's address; a pending one is shown to org admins only.
        "custom_domain": portal.verified_custom_domain,
    }


MAX_INVITES_PER_REQUEST = 1000


@extend_schema_serializer(component_name="PortalUserInviteRequest")
class PortalUserInviteInput(InputSerializer):
    users = PortalUserInviteItemInput(  # type: ignore[call-arg]  # many=True passes them to DRF's ListSerializer
        many=True, min_length=1, max_length=MAX_INVITES_PER_REQUEST
    )
    send_email = serializers.BooleanField(default=True)

    def validated_entries(self) -> list[InviteEntry]:
        return [InviteEntry(**user) for user in self.validated_data["users"]]


class InviteQueryInput(AnySerializer):
    dry_run = serializers.BooleanField(default=False)


class PaginationQueryInput(AnySerializer):
    limit = limit_field()
    offset = offset_field()


@extend_schema_serializer(component_name="PortalUserInviteResult")
class PortalUserInviteResultOutput(AnySerializer):
    email = serializers.EmailField()
    status = serializers.ChoiceField(choices=["invited", "linked", "already_member"])
    user = PortalUserOutput()


@extend_schema_serializer(component_name="PortalUserInviteResponse")
class PortalUserInviteOutput(AnySerializer):
    results = PortalUserInviteResultOutput(many=True)
    invited = serializers.IntegerField()
    linked = serializers.IntegerField()
    already_member = serializers.IntegerField()

    def to_representation(self, outcome: InviteOutcome) -> dict[str, Any]:
        return {
            "results": PortalUserInviteResultOutput(outcome.results, many=True).data,
            "invited": outcome.count("invited"),
            "linked": outcome.count("linked"),
            "already_member": outcome.count("already_member"),
        }


@extend_schema_serializer(component_name="EmailLinkRequest")
class EmailLinkInput(EmailInput):
    """A member's e-mail address; the answer is the same whether or not it is one."""


@extend_schema_serializer(component_name="EmailLinkVerifyRequest")
class EmailLinkVerifyInput(InputSerializer):
    """The e-mailed link's token, or the e-mail address and the 6-digit code."""

    token = serializers.CharField(required=False, max_length=200, help_text="The last segment of the e-mailed link.")
    email = serializers.EmailField(required=False, max_length=254)
    code = serializers.RegexField(r"^[0-9]{6}$", required=False, help_text="The 6-digit code of the e-mail.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "token" in attrs:
            if "email" in attrs or "code" in attrs:
                raise serializers.ValidationError({"token": ["Give the token alone, or the e-mail and the code."]})
            return attrs
        missing = {name: ["This field is required."] for name in ("email", "code") if name not in attrs}
        if missing:
            raise serializers.ValidationError(missing)
        return attrs
