import uuid
from collections.abc import Sequence
from typing import Any

from django.db.models import prefetch_related_objects
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.serializers import EmptyOutput
from accounts.models import User
from accounts.permissions import IsProductionOrgAdmin
from accounts.selectors import organization_get_for_admin
from portals.api.serializers import PortalCreateInput, PortalOutput, PortalUpdateInput
from portals.domain_verification import custom_domain_verify
from portals.models import Portal
from portals.selectors import portal_get_for_admin, portal_list_for_admin
from portals.services import UNSET, portal_create, portal_delete, portal_update
from portalsite.errors import NotFoundError

UUID_PATTERN = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


@extend_schema_view(
    list=extend_schema(operation_id="list_portals", summary="List Portals", responses=PortalOutput(many=True)),
    retrieve=extend_schema(operation_id="get_portal", summary="Get Portal", responses=PortalOutput),
    create=extend_schema(
        operation_id="create_portal",
        summary="Create Portal",
        description="Creates a new portal experience under the parent production tenant. "
        "Only accessible by production organization administrators.",
        request=PortalCreateInput,
        responses={201: PortalOutput},
    ),
    partial_update=extend_schema(
        operation_id="update_portal",
        summary="Update Portal",
        description="Updates an existing portal's name or custom domain.",
        request=PortalUpdateInput,
        responses=PortalOutput,
    ),
    update=extend_schema(
        operation_id="replace_portal",
        summary="Update Portal (PUT, same partial semantics as PATCH)",
        request=PortalUpdateInput,
        responses=PortalOutput,
    ),
    destroy=extend_schema(
        operation_id="delete_portal",
        summary="Delete Portal",
        description="Deletes a portal and drops its associated database schema entirely.",
        responses={200: EmptyOutput},
    ),
)
class PortalViewSet(viewsets.ViewSet):
    """/v1/portal: the portals of the caller's production organizations.

    A portal's users live in its own schema, which this app does not know: `customer_portal.api.portals`
    routes a subclass that supplies `portal_user_counts` and adds the `/users` actions.
    """

    permission_classes = [IsProductionOrgAdmin]
    lookup_field = "portal_id"
    lookup_value_regex = UUID_PATTERN

    @property
    def admin(self) -> User:
        assert isinstance(self.request.user, User)  # IsProductionOrgAdmin let only accounts through
        return self.request.user

    def portal_user_counts(self, portals: Sequence[Portal]) -> dict[uuid.UUID, int]:
        raise NotImplementedError("the routed subclass counts the users in the portals' schemas")

    def portal_output(self, portals: Sequence[Portal]) -> list[dict[str, Any]]:
        prefetch_related_objects(list(portals), "domains")  # no query when the caller already prefetched
        context = {"user_counts": self.portal_user_counts(portals)}
        return list(PortalOutput(portals, many=True, context=context).data)

    def list(self, request: Request) -> Response:
        return Response(self.portal_output(list(portal_list_for_admin(user=self.admin).prefetch_related("domains"))))

    def retrieve(self, request: Request, portal_id: str) -> Response:
        return Response(self.portal_output([portal_get_for_admin(user=self.admin, portal_id=portal_id)])[0])

    def create(self, request: Request) -> Response:
        data = PortalCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        organization = organization_get_for_admin(user=self.admin, organization_id=fields.pop("organization_id", None))
        portal = portal_create(organization=organization, created_by=self.admin, **fields)
        return Response(self.portal_output([portal])[0], status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, portal_id: str) -> Response:
        portal = portal_get_for_admin(user=self.admin, portal_id=portal_id)
        data = PortalUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        portal = portal_update(
            portal=portal,
            name=data.validated_data.get("name"),
            custom_domain=data.validated_data.get("custom_domain", UNSET),
        )
        return Response(self.portal_output([portal])[0])

    def update(self, request: Request, portal_id: str) -> Response:
        return self.partial_update(request, portal_id)  # PUT has PATCH's partial semantics (API.md)

    def destroy(self, request: Request, portal_id: str) -> Response:
        portal_delete(portal=portal_get_for_admin(user=self.admin, portal_id=portal_id))
        return Response({})

    @extend_schema(
        operation_id="verify_portal_custom_domain",
        summary="Verify Custom Domain",
        description="Looks up `_portalsite-challenge.<custom_domain>` TXT now. The portal comes back `verified` "
        "when the record holds `custom_domain_verification.value`; otherwise its state is unchanged and "
        "`custom_domain_verification.error` says what was found. 404 when the portal has no custom domain.",
        request=None,
        responses=PortalOutput,
    )
    @action(detail=True, methods=["post"], url_path="custom-domain/verify")
    def verify_custom_domain(self, request: Request, portal_id: str) -> Response:
        portal = portal_get_for_admin(user=self.admin, portal_id=portal_id)
        if custom_domain_verify(portal=portal) is None:
            raise NotFoundError()
        return Response(self.portal_output([portal])[0])
