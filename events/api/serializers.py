from typing import Any

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from events.chain import audit_event_data
from events.models import AuditEvent
from portalsite.api.serializers import AnySerializer

MAX_AUDIT_PAGE = 500


class AuditEventListQueryInput(AnySerializer):
    organization_id = serializers.UUIDField(required=False)
    portal_id = serializers.UUIDField(required=False)
    action = serializers.CharField(required=False, max_length=64)
    actor_email = serializers.CharField(required=False, max_length=254)
    since = serializers.DateTimeField(required=False, help_text="Events at or after this time.")
    until = serializers.DateTimeField(required=False, help_text="Events before this time.")


class AuditEventPageQueryInput(AuditEventListQueryInput):
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_AUDIT_PAGE, default=100)
    cursor = serializers.CharField(
        required=False, max_length=200, help_text='From the `Link: <...>; rel="next"` header of the page before.'
    )


class AuditEventExportQueryInput(AuditEventListQueryInput):
    format = serializers.ChoiceField(choices=["ndjson", "csv"], default="ndjson")


class PortalAuditEventPageQueryInput(AuditEventPageQueryInput):
    """The routed portal's events: its organization and id are the route's."""

    organization_id = None  # type: ignore[assignment]
    portal_id = None  # type: ignore[assignment]


@extend_schema_serializer(component_name="AuditActor")
class AuditActorOutput(AnySerializer):
    type = serializers.ChoiceField(choices=AuditEvent.ActorType.choices)
    id = serializers.CharField(allow_null=True)
    email = serializers.CharField(allow_null=True)


@extend_schema_serializer(component_name="AuditTarget")
class AuditTargetOutput(AnySerializer):
    type = serializers.CharField()
    id = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # the resource's field, not Field.label


@extend_schema_serializer(component_name="AuditEvent")
class AuditEventOutput(AnySerializer):
    """Its fields document the resource; the representation is `events.chain.audit_event_data`, the one the
    chain hashes and the export writes."""

    id = serializers.UUIDField()
    occurred_at = serializers.DateTimeField()
    action = serializers.CharField()
    organization_id = serializers.UUIDField()
    portal_id = serializers.UUIDField(allow_null=True)
    actor = AuditActorOutput()
    via = serializers.ChoiceField(choices=AuditEvent.Via.choices)
    ip_address = serializers.IPAddressField(allow_null=True)
    user_agent = serializers.CharField()
    target = AuditTargetOutput()
    changes = serializers.DictField(help_text="`{field: [before, after]}` of the fields that changed.")
    request_id = serializers.CharField()

    def to_representation(self, instance: AuditEvent) -> dict[str, Any]:
        return audit_event_data(instance)
