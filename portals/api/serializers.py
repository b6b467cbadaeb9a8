from typing import Any

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from portals.domain_verification import challenge_name
from portals.models import Domain, Portal
from portalsite.api.serializers import AnySerializer, InputSerializer


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
class CustomDomainVerificationOutput(AnySerializer):
    """The TXT record that proves a custom domain, and what the last lookup found (a Domain row)."""

    type = serializers.SerializerMethodField()
    name = serializers.SerializerMethodField()
    value = serializers.CharField(source="verification_token")
    checked_at = serializers.DateTimeField(source="verification_checked_at", allow_null=True)
    error = serializers.SerializerMethodField()

    def get_type(self, domain: Domain) -> str:
        return "TXT"

    def get_name(self, domain: Domain) -> str:
        return challenge_name(domain.domain)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_error(self, domain: Domain) -> str | None:
        return domain.verification_error or None


@extend_schema_serializer(component_name="PortalResponse")
class PortalOutput(serializers.ModelSerializer[Portal]):
    """A portal (prefetch its `domains`). `user_count` (non-revoked users) lives in the portal's own schema:
    the caller reads it for all the portals at once and passes `user_counts` (portal id -> count) in the context."""

    organization_id = serializers.UUIDField(read_only=True)
    domain = serializers.CharField(source="default_domain", read_only=True)
    custom_domain = serializers.CharField(read_only=True, allow_null=True)
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

    @extend_schema_field(serializers.ChoiceField(choices=Domain.VerificationStatus.choices, allow_null=True))
    def get_custom_domain_status(self, portal: Portal) -> str | None:
        entry = portal.custom_domain_entry
        return entry.verification_status if entry else None

    @extend_schema_field(CustomDomainVerificationOutput(allow_null=True))
    def get_custom_domain_verification(self, portal: Portal) -> dict[str, Any] | None:
        entry = portal.custom_domain_entry
        return dict(CustomDomainVerificationOutput(entry).data) if entry else None

    @extend_schema_field(serializers.IntegerField())
    def get_user_count(self, portal: Portal) -> int:
        count: int = self.context["user_counts"].get(portal.id, 0)
        return count
