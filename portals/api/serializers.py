from typing import Any

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from customer_portal.api.serializers import PortalUserInviteItemInput, PortalUserOutput
from customer_portal.services import InviteEntry
from portals.domain_verification import challenge_name
from portals.models import Domain, Portal
from portals.services import portal_host
from portalsite.api.serializers import InputSerializer

MAX_INVITES_PER_REQUEST = 1000


@extend_schema_serializer(component_name="PortalCreateRequest")
class PortalCreateInput(InputSerializer):
    name = serializers.CharField(min_length=1, max_length=100)
    slug = serializers.CharField(required=False, max_length=63)
    custom_domain = serializers.CharField(required=False, allow_null=True, max_length=253)
    organization_id = serializers.UUIDField(required=False)


@extend_schema_serializer(component_name="PortalUpdateRequest")
class PortalUpdateInput(InputSerializer):
    name = serializers.CharField(required=False, min_length=1, max_length=100)
    custom_domain = serializers.CharField(required=False, allow_null=True, max_length=253)


@extend_schema_serializer(component_name="CustomDomainVerification")
class CustomDomainVerificationOutput(serializers.Serializer):
    """The TXT record that proves a custom domain, and what the last lookup found."""

    type = serializers.CharField()
    name = serializers.CharField()
    value = serializers.CharField()
    checked_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(allow_null=True)

    def to_representation(self, domain: Domain) -> dict[str, Any]:
        return {
            "type": "TXT",
            "name": challenge_name(domain.domain),
            "value": domain.verification_token,
            "checked_at": serializers.DateTimeField().to_representation(domain.verification_checked_at)
            if domain.verification_checked_at
            else None,
            "error": domain.verification_error or None,
        }


def _custom(portal: Portal) -> Domain | None:
    return next((domain for domain in portal.domains.all() if domain.is_custom), None)


@extend_schema_serializer(component_name="PortalResponse")
class PortalOutput(serializers.ModelSerializer):
    """A portal; `user_count` (non-revoked users) comes from the view's context, read in one query."""

    organization_id = serializers.UUIDField(read_only=True)
    domain = serializers.SerializerMethodField()
    custom_domain = serializers.SerializerMethodField()
    custom_domain_status = serializers.SerializerMethodField()
    custom_domain_verification = serializers.SerializerMethodField()
    user_count = serializers.SerializerMethodField()

    class Meta:
        model = Portal
        fields = [
            "id", "organization_id", "name", "slug", "domain", "custom_domain", "custom_domain_status",
            "custom_domain_verification", "user_count", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_domain(self, portal: Portal) -> str:
        return portal_host(portal.slug)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_custom_domain(self, portal: Portal) -> str | None:
        custom = _custom(portal)
        return custom.domain if custom else None

    @extend_schema_field(serializers.ChoiceField(choices=Domain.VerificationStatus.choices, allow_null=True))
    def get_custom_domain_status(self, portal: Portal) -> str | None:
        custom = _custom(portal)
        return custom.verification_status if custom else None

    @extend_schema_field(CustomDomainVerificationOutput(allow_null=True))
    def get_custom_domain_verification(self, portal: Portal) -> dict[str, Any] | None:
        custom = _custom(portal)
        return CustomDomainVerificationOutput(custom).data if custom else None

    def get_user_count(self, portal: Portal) -> int:
        return self.context["user_counts"].get(portal.id, 0)


@extend_schema_serializer(component_name="PortalUserInviteRequest")
class PortalUserInviteInput(InputSerializer):
    users = PortalUserInviteItemInput(many=True, min_length=1, max_length=MAX_INVITES_PER_REQUEST)
    send_email = serializers.BooleanField(default=True)

    def validated_entries(self) -> list[InviteEntry]:
        return [InviteEntry(**user) for user in self.validated_data["users"]]


class InviteQueryInput(serializers.Serializer):
    dry_run = serializers.BooleanField(default=False)


class PaginationQueryInput(serializers.Serializer):
    limit = serializers.IntegerField(required=False, min_value=1, max_value=10_000)
    offset = serializers.IntegerField(required=False, min_value=0, default=0)


@extend_schema_serializer(component_name="PortalUserInviteResult")
class PortalUserInviteResultOutput(serializers.Serializer):
    email = serializers.EmailField()
    status = serializers.ChoiceField(choices=["invited", "linked", "already_member"])
    user = PortalUserOutput()


@extend_schema_serializer(component_name="PortalUserInviteResponse")
class PortalUserInviteOutput(serializers.Serializer):
    results = PortalUserInviteResultOutput(many=True)
    invited = serializers.IntegerField()
    linked = serializers.IntegerField()
    already_member = serializers.IntegerField()

    def to_representation(self, outcome: Any) -> dict[str, Any]:
        return {
            "results": PortalUserInviteResultOutput(outcome.results, many=True).data,
            "invited": outcome.count("invited"),
            "linked": outcome.count("linked"),
            "already_member": outcome.count("already_member"),
        }
