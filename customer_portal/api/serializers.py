from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from customer_portal.models import PortalUser


@extend_schema_serializer(component_name="PortalUserResponse")
class PortalUserOutput(serializers.ModelSerializer):
    class Meta:
        model = PortalUser
        fields = ["id", "email", "name", "role", "status", "global_user_id", "invited_at", "joined_at", "last_login_at"]
        read_only_fields = fields
