"""/v1/webhooks: an organization's webhook endpoints and their deliveries (API.md "Webhooks"), for its admins.

An endpoint of another organization is a 404, as a missing one is. Which organization a portal belongs
to is the portals app's knowledge (a layer above this one): `portals.api.webhooks` routes a subclass
that supplies `portal_organization_id`.
"""

import uuid

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.serializers import EmptyOutput
from accounts.models import User
from accounts.permissions import IsProductionOrgAdmin, request_admin_organization_ids
from accounts.selectors import organization_get_for_admin
from events.api.webhook_serializers import (
    WebhookDeliveryListQueryInput,
    WebhookDeliveryOutput,
    WebhookEndpointCreateInput,
    WebhookEndpointOutput,
    WebhookEndpointUpdateInput,
    WebhookEndpointWithSecretOutput,
)
from events.webhook_models import WebhookEndpoint
from events.webhook_selectors import (
    webhook_delivery_get,
    webhook_delivery_list,
    webhook_endpoint_get,
    webhook_endpoint_list,
)
from events.webhook_services import (
    webhook_delivery_retry,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_test,
    webhook_endpoint_update,
)
from portalsite.api.serializers import ErrorResponseSerializer, query_params_validated
from portalsite.errors import ApplicationError

UUID_PATTERN = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
_DISABLED = OpenApiResponse(ErrorResponseSerializer, "The endpoint is disabled: enable it first")


@extend_schema_view(
    list=extend_schema(
        operation_id="list_webhooks", summary="List Webhook Endpoints", responses=WebhookEndpointOutput(many=True)
    ),
    retrieve=extend_schema(operation_id="get_webhook", summary="Get Webhook Endpoint", responses=WebhookEndpointOutput),
    create=extend_schema(
        operation_id="create_webhook",
        summary="Create Webhook Endpoint",
        description="Registers an endpoint for the organization's events (`portal_id`: only that portal's). "
        "The answer is the only one, with rotate-secret's, that carries the signing `secret`.",
        request=WebhookEndpointCreateInput,
        responses={201: WebhookEndpointWithSecretOutput},
    ),
    partial_update=extend_schema(
        operation_id="update_webhook",
        summary="Update Webhook Endpoint",
        request=WebhookEndpointUpdateInput,
        responses=WebhookEndpointOutput,
    ),
    destroy=extend_schema(operation_id="delete_webhook", summary="Delete Webhook Endpoint", responses=EmptyOutput),
)
class WebhookViewSet(viewsets.ViewSet):
    permission_classes = [IsProductionOrgAdmin]
    lookup_field = "webhook_id"
    lookup_value_regex = UUID_PATTERN
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    @property
    def admin(self) -> User:
        assert isinstance(self.request.user, User)  # IsProductionOrgAdmin let only accounts through
        return self.request.user

    def portal_organization_id(self, portal_id: uuid.UUID) -> uuid.UUID | None:
        """The organization of the portal `portal_id`, or None when there is no such portal."""
        raise NotImplementedError("the routed subclass asks the portals app")

    def endpoint(self, webhook_id: str) -> WebhookEndpoint:
        return webhook_endpoint_get(
            organization_ids=request_admin_organization_ids(self.request), endpoint_id=webhook_id
        )

    def list(self, request: Request) -> Response:
        endpoints = webhook_endpoint_list(organization_ids=request_admin_organization_ids(request))
        return Response(WebhookEndpointOutput(endpoints, many=True).data)

    def retrieve(self, request: Request, webhook_id: str) -> Response:
        return Response(WebhookEndpointOutput(self.endpoint(webhook_id)).data)

    def create(self, request: Request) -> Response:
        data = WebhookEndpointCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        organization = organization_get_for_admin(user=self.admin, organization_id=fields.pop("organization_id", None))
        portal_id = fields.pop("portal_id", None)
        if portal_id is not None and self.portal_organization_id(portal_id) != organization.id:
            raise ApplicationError("Not a portal of this organization.", loc=("portal_id",))
        endpoint = webhook_endpoint_create(organization=organization, portal_id=portal_id, **fields)
        return Response(WebhookEndpointWithSecretOutput(endpoint).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, webhook_id: str) -> Response:
        endpoint = self.endpoint(webhook_id)
        data = WebhookEndpointUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = webhook_endpoint_update(endpoint=endpoint, **data.validated_data)
        return Response(WebhookEndpointOutput(endpoint).data)

    def destroy(self, request: Request, webhook_id: str) -> Response:
        webhook_endpoint_delete(endpoint=self.endpoint(webhook_id))
        return Response({})

    @extend_schema(
        operation_id="rotate_webhook_secret",
        summary="Rotate Webhook Secret",
        description="A new signing secret. For 24 hours deliveries carry a second signature made with the "
        "previous one, so receivers can switch without missing any.",
        request=None,
        responses=WebhookEndpointWithSecretOutput,
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, webhook_id: str) -> Response:
        endpoint = webhook_endpoint_rotate_secret(endpoint=self.endpoint(webhook_id))
        return Response(WebhookEndpointWithSecretOutput(endpoint).data)

    @extend_schema(
        operation_id="test_webhook",
        summary="Send Test Event",
        description="Queues a `webhook.test` event to this endpoint only (it is not an audit event).",
        request=None,
        responses={202: EmptyOutput, 409: _DISABLED},
    )
    @action(detail=True, methods=["post"], url_path="test")
    def test(self, request: Request, webhook_id: str) -> Response:
        webhook_endpoint_test(endpoint=self.endpoint(webhook_id))
        return Response({}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        operation_id="list_webhook_deliveries",
        summary="List Webhook Deliveries",
        description="The endpoint's deliveries, newest first, each with every try's status code, time and error.",
        parameters=[WebhookDeliveryListQueryInput],
        responses=WebhookDeliveryOutput(many=True),
    )
    @action(detail=True, methods=["get"], url_path="deliveries")
    def deliveries(self, request: Request, webhook_id: str) -> Response:
        endpoint = self.endpoint(webhook_id)
        query = query_params_validated(WebhookDeliveryListQueryInput, request)
        deliveries = webhook_delivery_list(endpoint=endpoint, status=query.get("status"), limit=query["limit"])
        return Response(WebhookDeliveryOutput(deliveries, many=True).data)

    @extend_schema(
        operation_id="retry_webhook_delivery",
        summary="Retry Webhook Delivery",
        description="One more try of this delivery, now, whatever its status.",
        request=None,
        responses={202: EmptyOutput, 409: _DISABLED},
    )
    @action(detail=True, methods=["post"], url_path=rf"deliveries/(?P<delivery_id>{UUID_PATTERN})/retry")
    def retry(self, request: Request, webhook_id: str, delivery_id: str) -> Response:
        delivery = webhook_delivery_get(endpoint=self.endpoint(webhook_id), delivery_id=delivery_id)
        webhook_delivery_retry(delivery=delivery)
        return Response({}, status=status.HTTP_202_ACCEPTED)
