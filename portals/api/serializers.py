from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from portals.models import Portal
from portalsite.api.serializers import InputSerializer


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


@extend_schema_serializer(component_name="PortalResponse")
class PortalOutput(serializers.ModelSerializer[Portal]):
    """A portal (prefetch its `domains`). `user_count` (non-revoked users) lives in the portal's own schema:
    the caller reads it for all the portals at once and passes `user_counts` (portal id -> count) in the context."""

    organization_id = serializers.UUIDField(read_only=True)
    domain = serializers.CharField(source="default_domain", read_only=True)
    custom_domain = serializers.CharField(read_only=True, allow_null=True)
    user_count = serializers.SerializerMethodField()

    class Meta:
        model = Portal
        fields = [
            "id", "organization_id", "name", "slug", "domain", "custom_domain", "user_count", "created_at", "updated_at"
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.IntegerField())
    def get_user_count(self, portal: Portal) -> int:
        count: int = self.context["user_counts"].get(portal.id, 0)
        return count
