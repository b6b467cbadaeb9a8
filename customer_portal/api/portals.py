"""/v1/portal as routed: the portal directory of `portals.api.views`, plus what each portal's own schema
knows (its user count, and `/v1/portal/{portal_id}/users`)."""

import uuid
from collections.abc import Sequence

from django_tenants.utils import tenant_context
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle

from accounts.api.serializers import EmptyOutput
from accounts.api.throttles import InviteRateThrottle
from customer_portal.api.serializers import (
    InviteQueryInput,
    PaginationQueryInput,
    PortalUserInviteInput,
    PortalUserInviteOutput,
    PortalUserOutput,
)
from customer_portal.selectors import portal_user_counts, portal_user_list
from customer_portal.services import portal_user_remove, portal_users_invite
from portals.api import views
from portals.models import Portal
from portals.selectors import portal_get_for_admin
from portalsite.api.schema import TOTAL_COUNT_HEADER
from portalsite.api.serializers import query_params_validated


class PortalViewSet(views.PortalViewSet):
    def get_throttles(self) -> list[BaseThrottle]:
        return [InviteRateThrottle()] if self.action == "users" and self.request.method == "POST" else []

    def portal_user_counts(self, portals: Sequence[Portal]) -> dict[uuid.UUID, int]:
        return portal_user_counts(portals=portals)

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
        portal = portal_get_for_admin(user=self.admin, portal_id=portal_id)
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
                invited_by=self.admin,
                send_email=data.validated_data["send_email"],
                dry_run=dry_run,
            )
        return Response(
            PortalUserInviteOutput(outcome).data, status=status.HTTP_200_OK if dry_run else status.HTTP_201_CREATED
        )

    @extend_schema(
        operation_id="remove_portal_user",
        summary="Remove Portal User",
        description="Removes a user's membership, sessions and invitations; the global account stays.",
        responses={200: EmptyOutput},
    )
    @action(detail=True, methods=["delete"], url_path=r"users/(?P<user_id>[^/]+)")
    def remove_user(self, request: Request, portal_id: str, user_id: str) -> Response:
        portal = portal_get_for_admin(user=self.admin, portal_id=portal_id)
        with tenant_context(portal):
            portal_user_remove(portal_user_id=user_id)
        return Response({})
