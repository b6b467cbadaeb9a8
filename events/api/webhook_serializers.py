"""Request and response bodies of /v1/webhooks (API.md "Webhooks")."""

import re
from typing import Any

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from events.webhook_models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from events.webhooks import URL_MAX_LENGTH
from portalsite.api.serializers import AnySerializer, InputSerializer

# `*`, an action (`invitation.accepted`), or an action's prefix and `.*` (`portal_user.*`).
_PATTERN = re.compile(r"^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?)$")
PATTERNS_MAX = 50
DELIVERIES_LIMIT_MAX = 500


def _patterns_field(**kwargs: Any) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=100),
        min_length=1,
        max_length=PATTERNS_MAX,
        help_text="Event patterns: `*`, an action (`invitation.accepted`) or a prefix and `.*` (`portal_user.*`).",
        **kwargs,
    )


def _patterns_validated(patterns: list[str]) -> list[str]:
    for pattern in patterns:
        if not _PATTERN.match(pattern):
            raise serializers.ValidationError(
                f"{pattern!r} is not an event pattern: use *, an action such as invitation.accepted, or portal_user.*"
            )
    return list(dict.fromkeys(patterns))


@extend_schema_serializer(component_name="WebhookEndpointCreateRequest")
class WebhookEndpointCreateInput(InputSerializer):
    url = serializers.CharField(max_length=URL_MAX_LENGTH)
    events = _patterns_field(required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=500)
    organization_id = serializers.UUIDField(required=False)
    portal_id = serializers.UUIDField(required=False, allow_null=True)

    def validate_events(self, value: list[str]) -> list[str]:
        return _patterns_validated(value)


@extend_schema_serializer(component_name="WebhookEndpointUpdateRequest")
class WebhookEndpointUpdateInput(InputSerializer):
    url = serializers.CharField(required=False, max_length=URL_MAX_LENGTH)
    events = _patterns_field(required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=500)
    enabled = serializers.BooleanField(required=False)

    def validate_events(self, value: list[str]) -> list[str]:
        return _patterns_validated(value)


class _EndpointFields(serializers.ModelSerializer[WebhookEndpoint]):
    organization_id = serializers.UUIDField(read_only=True)
    events = serializers.ListField(child=serializers.CharField(), read_only=True)
    disabled_reason = serializers.SerializerMethodField()

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id", "organization_id", "portal_id", "url", "events", "description", "enabled", "disabled_reason",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_disabled_reason(self, endpoint: WebhookEndpoint) -> str | None:
        return endpoint.disabled_reason or None


@extend_schema_serializer(component_name="WebhookEndpoint")
class WebhookEndpointOutput(_EndpointFields):
    """An endpoint, without its secret."""


@extend_schema_serializer(component_name="WebhookEndpointWithSecret")
class WebhookEndpointWithSecretOutput(_EndpointFields):
    """An endpoint and its signing secret (`whsec_...`): only the create and rotate-secret answers carry it."""

    class Meta(_EndpointFields.Meta):
        fields = [*_EndpointFields.Meta.fields, "secret"]
        read_only_fields = fields


@extend_schema_serializer(component_name="WebhookAttempt")
class WebhookAttemptOutput(serializers.ModelSerializer[WebhookAttempt]):
    error = serializers.SerializerMethodField()

    class Meta:
        model = WebhookAttempt
        fields = ["attempted_at", "response_status", "duration_ms", "error"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_error(self, attempt: WebhookAttempt) -> str | None:
        return attempt.error or None


@extend_schema_serializer(component_name="WebhookDelivery")
class WebhookDeliveryOutput(serializers.ModelSerializer[WebhookDelivery]):
    """A delivery and every try of it, oldest first (`attempt_log`: status code, time, error)."""

    attempt_log = WebhookAttemptOutput(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "event_id", "event_type", "status", "attempts", "response_status", "last_attempt_at",
            "next_attempt_at", "created_at", "attempt_log",
        ]  # fmt: skip
        read_only_fields = fields


class WebhookDeliveryListQueryInput(AnySerializer):
    status = serializers.ChoiceField(choices=WebhookDelivery.Status.choices, required=False)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=DELIVERIES_LIMIT_MAX, default=100)
