from django.db.models import prefetch_related_objects
from django_tenants.utils import tenant_context
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.serializers import EmptyOutput
from accounts.api.throttles import InviteRateThrottle
from accounts.permissions import IsProductionOrgAdmin
from customer_portal.api.serializers import PortalUserOutput
from customer_portal.selectors import portal_user_list
from customer_portal.services import portal_user_remove, portal_users_invite
from portals.api.serializers import (
    InviteQueryInput,
    PaginationQueryInput,
    PortalCreateInput,
    PortalOutput,
    PortalUpdateInput,
    PortalUserInviteInput,
    PortalUserInviteOutput,
)
from portals.domain_verification import custom_domain_verify
from portals.models import Portal
from portals.selectors import portal_get_for_admin, portal_list_for_admin, portal_user_counts
from portals.services import UNSET, portal_create, portal_delete, portal_update
from portalsite.api.schema import TOTAL_COUNT_HEADER
from portalsite.api.serializers import query_params_validated
from portalsite.errors import NotFoundError

UUID_PATTERN = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


def _portal_output(portal: Portal) -> dict:
    prefetch_related_objects([portal], "domains")  # read once for domain, custom_domain and its verification
    return PortalOutput(portal, context={"user_counts": portal_user_counts(portals=[portal])}).data


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
    """/v1/portal: the portals of the caller's production organizations."""

    permission_classes = [IsProductionOrgAdmin]
    lookup_field = "portal_id"
    lookup_value_regex = UUID_PATTERN

    def get_throttles(self) -> list:
        return [InviteRateThrottle()] if self.action == "users" and self.request.method == "POST" else []

    def list(self, request: Request) -> Response:
        portals = list(portal_list_for_admin(user=request.user).prefetch_related("domains"))
        context = {"user_counts": portal_user_counts(portals=portals)}
        return Response(PortalOutput(portals, many=True, context=context).data)

    def retrieve(self, request: Request, portal_id: str) -> Response:
        return Response(_portal_output(portal_get_for_admin(user=request.user, portal_id=portal_id)))

    def create(self, request: Request) -> Response:
        data = PortalCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        portal = portal_create(admin=request.user, **data.validated_data)
        return Response(_portal_output(portal), status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, portal_id: str) -> Response:
        portal = portal_get_for_admin(user=request.user, portal_id=portal_id)
        data = PortalUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        portal = portal_update(
            portal=portal,
            name=data.validated_data.get("name"),
            custom_domain=data.validated_data.get("custom_domain", UNSET),
        )
        return Response(_portal_output(portal))

    def update(self, request: Request, portal_id: str) -> Response:
        return self.partial_update(request, portal_id)  # PUT has PATCH's partial semantics (API.md)

    def destroy(self, request: Request, portal_id: str) -> Response:
        portal_delete(portal=portal_get_for_admin(user=request.user, portal_id=portal_id))
        return Response({})

    @extend_schema(
        methods=["GET"],
        operation_id="list_portal_users",
        summary="List Portal Users",
        description="Lists the users of a portal; all of them without `limit`. "
        "The total is in the `X-Total-Count` header.",
        parameters=[PaginationQueryInput, TOTAL_COUNT_HEADER],
        responses=PortalUserOutput(many=True),
    )
    @extend_schema(
        methods=["POST"],
        operation_id="invite_portal_users",
        summary="Invite Portal User Bulk",
        description="Invites up to 1,000 people, auto-linking existing global accounts. "
        "`?dry_run=true` reports the same results without writing or sending anything (200).",
        parameters=[InviteQueryInput],
        request=PortalUserInviteInput,
        responses={201: PortalUserInviteOutput, 200: OpenApiResponse(PortalUserInviteOutput, "Dry run")},
    )
    @action(detail=True, methods=["get", "post"], url_path="users")
    def users(self, request: Request, portal_id: str) -> Response:
        portal = portal_get_for_admin(user=request.user, portal_id=portal_id)
        if request.method == "GET":
            page = query_params_validated(PaginationQueryInput, request)
            with tenant_context(portal):
                users, total = portal_user_list(
                    limit=page.get("limit"), offset=page["offset"], values=PortalUserOutput.Meta.fields
                )
            return Response(PortalUserOutput(users, many=True).data, headers={"X-Total-Count": str(total)})
        dry_run = query_params_validated(InviteQueryInput, request)["dry_run"]
        data = PortalUserInviteInput(data=request.data)
        data.is_valid(raise_exception=True)
        with tenant_context(portal):
            outcome = portal_users_invite(
                portal=portal,
                entries=data.validated_entries(),
                invited_by=request.user,
                send_email=data.validated_data["send_email"],
                dry_run=dry_run,
            )
        return Response(
            PortalUserInviteOutput(outcome).data, status=status.HTTP_200_OK if dry_run else status.HTTP_201_CREATED
        )

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
        portal = portal_get_for_admin(user=request.user, portal_id=portal_id)
        if custom_domain_verify(portal=portal) is None:
            raise NotFoundError()
        return Response(_portal_output(portal))

    @extend_schema(
        operation_id="remove_portal_user",
        summary="Remove Portal User",
        description="Removes a user's membership, sessions and invitations; the global account stays.",
        responses={200: EmptyOutput},
    )
    @action(detail=True, methods=["delete"], url_path=r"users/(?P<user_id>[^/]+)")
    def remove_user(self, request: Request, portal_id: str, user_id: str) -> Response:
        portal = portal_get_for_admin(user=request.user, portal_id=portal_id)
        with tenant_context(portal):
            portal_user_remove(portal_user_id=user_id)
        return Response({})
