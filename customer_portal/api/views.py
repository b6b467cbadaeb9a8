"""/v1/customer-portal: one portal's configuration, people, invitations, sessions, stats and features.

The portal is the request's host, or the X-Portal-ID header on the API host
(customer_portal.api.portal); the views run in its schema.
"""

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import permissions, status, viewsets
from rest_framework.authentication import BaseAuthentication
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle

from accounts.api.serializers import EmptyOutput, TokenPairOutput
from accounts.api.throttles import AuthRateThrottle, InviteRateThrottle
from accounts.permissions import request_account
from customer_portal.api.authentication import request_portal_session
from customer_portal.api.permissions import IsPortalAdmin, IsPortalMemberOrAdmin, IsPortalUser
from customer_portal.api.portal import request_portal
from customer_portal.api.serializers import (
    FeatureOutput,
    FeatureToggleInput,
    InvitationAcceptInput,
    InvitationCreateInput,
    InvitationListQueryInput,
    InvitationOutput,
    MeOutput,
    PortalConfigOutput,
    PortalConfigUpdateInput,
    PortalSessionOutput,
    PortalStatsOutput,
    PortalUserDetailOutput,
    PortalUserInviteOneInput,
    PortalUserInviteOutput,
    PortalUserListQueryInput,
    PortalUserOutput,
    portal_summary,
)
from customer_portal.invite_rows import InviteEntry
from customer_portal.models import PortalSession
from customer_portal.selectors import (
    feature_list,
    invitation_list,
    portal_settings_get,
    portal_stats,
    portal_user_get,
    portal_user_list,
    portal_user_session_list,
    session_list_active,
)
from customer_portal.services import (
    feature_toggle,
    invitation_accept,
    invitation_create,
    invitation_resend,
    invitation_revoke,
    portal_config_update,
    portal_session_end,
    portal_user_remove,
    portal_user_revoke,
    portal_users_invite,
)
from customer_portal.tokens import portal_token_pair
from events.api.serializers import AuditEventOutput, PortalAuditEventPageQueryInput
from events.api.views import LINK_HEADER, audit_event_page_response
from events.selectors import audit_event_list
from portals.caching import portal_config_cached
from portalsite.api.schema import TOTAL_COUNT_HEADER
from portalsite.api.serializers import ErrorResponseSerializer, query_params_validated, represent
from portalsite.requests import client_details

_NOT_IN_THIS_STATE = OpenApiResponse(ErrorResponseSerializer, "Not possible in the invitation's current status")


class PortalConfigViewSet(viewsets.ViewSet):
    def get_permissions(self) -> list[permissions.BasePermission]:
        return [IsPortalMemberOrAdmin()] if self.action == "retrieve" else [IsPortalAdmin()]

    @staticmethod
    def _config(request: Request, portal_settings: Any) -> dict[str, Any]:
        portal = request_portal(request)
        context = {
            "portal": portal_summary(portal),
            "features": feature_list(),
        }
        return dict(PortalConfigOutput(portal_settings, context=context).data)

    @extend_schema(operation_id="get_customer_portal_config", summary="Get customer portal configuration",
                   responses=PortalConfigOutput)  # fmt: skip
    def retrieve(self, request: Request) -> Response:
        portal = request_portal(request)
        return Response(portal_config_cached(portal.id, lambda: self._config(request, portal_settings_get())))

    @extend_schema(operation_id="update_customer_portal_config", summary="Update customer portal configuration",
                   request=PortalConfigUpdateInput, responses=PortalConfigOutput)  # fmt: skip
    def partial_update(self, request: Request) -> Response:
        data = PortalConfigUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(self._config(request, portal_config_update(**data.validated_data)))


@extend_schema_view(
    list=extend_schema(operation_id="list_customer_portal_users", summary="List portal users",
                       parameters=[PortalUserListQueryInput, TOTAL_COUNT_HEADER],
                       responses=PortalUserOutput(many=True)),
    retrieve=extend_schema(operation_id="get_customer_portal_user", summary="Get a single portal user",
                           responses=PortalUserDetailOutput),
    destroy=extend_schema(operation_id="delete_customer_portal_user", summary="Remove portal access from a user",
                          description="Deletes the membership with its sessions and invitations.",
                          responses={200: EmptyOutput}),
)  # fmt: skip
class PortalUserViewSet(viewsets.ViewSet):
    permission_classes = [IsPortalAdmin]
    lookup_field = "id"

    def get_throttles(self) -> list[BaseThrottle]:
        return [InviteRateThrottle()] if self.action == "invite" else []

    def list(self, request: Request) -> Response:
        query = query_params_validated(PortalUserListQueryInput, request)
        users, total = portal_user_list(**query, values=PortalUserOutput.Meta.fields)
        return Response(PortalUserOutput(users, many=True).data, headers={"X-Total-Count": str(total)})

    def retrieve(self, request: Request, id: str) -> Response:
        return Response(PortalUserDetailOutput(portal_user_get(portal_user_id=id)).data)

    def destroy(self, request: Request, id: str) -> Response:
        portal_user_remove(portal_user_id=id)
        return Response({})

    @extend_schema(operation_id="revoke_customer_portal_user_access", summary="Revoke portal access from a user",
                   request=None, responses={200: PortalUserOutput})  # fmt: skip
    @action(detail=True, methods=["delete"], url_path="access")
    def access(self, request: Request, id: str) -> Response:
        return Response(PortalUserOutput(portal_user_revoke(portal_user_id=id)).data)

    @extend_schema(operation_id="invite_customer_portal_contact", summary="Invite a contact to the customer portal",
                   request=PortalUserInviteOneInput, responses={201: PortalUserInviteOutput})  # fmt: skip
    @action(detail=False, methods=["post"], url_path="invite")
    def invite(self, request: Request) -> Response:
        data = PortalUserInviteOneInput(data=request.data)
        data.is_valid(raise_exception=True)
        outcome = portal_users_invite(
            portal=request_portal(request),
            entries=[InviteEntry(**data.validated_data)],
            invited_by=request_account(request),
        )
        return Response(PortalUserInviteOutput(outcome).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(operation_id="list_customer_portal_invitations", summary="List portal invitations",
                       description="Pending invitations by default; `status` picks others, `all` every one; "
                                   "`delivery_status` those whose e-mail is queued, sent or failed.",
                       parameters=[InvitationListQueryInput], responses=InvitationOutput(many=True)),
    create=extend_schema(operation_id="create_customer_portal_invitation", summary="Send a portal invitation",
                         request=InvitationCreateInput, responses={201: InvitationOutput}),
    destroy=extend_schema(operation_id="revoke_customer_portal_invitation", summary="Revoke an invitation",
                          responses={200: InvitationOutput, 409: _NOT_IN_THIS_STATE}),
)  # fmt: skip
class InvitationViewSet(viewsets.ViewSet):
    lookup_field = "id"

    def get_permissions(self) -> list[permissions.BasePermission]:
        return [permissions.AllowAny()] if self.action == "accept" else [IsPortalAdmin()]

    def get_throttles(self) -> list[BaseThrottle]:
        if self.action == "accept":
            return [AuthRateThrottle()]
        return [InviteRateThrottle()] if self.action in ("create", "resend") else []

    def get_authenticators(self) -> list[BaseAuthentication]:
        # Accepting is anonymous: a stale token in the browser must not get in the way.
        return [] if getattr(self, "action", None) == "accept" else super().get_authenticators()

    def get_authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'

    def list(self, request: Request) -> Response:
        query = query_params_validated(InvitationListQueryInput, request)
        invitations = invitation_list(status=query["status"], delivery_status=query.get("delivery_status"))
        return Response(InvitationOutput(invitations, many=True).data)

    def create(self, request: Request) -> Response:
        data = InvitationCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        invitation = invitation_create(
            portal=request_portal(request), invited_by=request_account(request), **data.validated_data
        )
        return Response(InvitationOutput(invitation).data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, id: str) -> Response:
        return Response(InvitationOutput(invitation_revoke(invitation_id=id)).data)

    @extend_schema(operation_id="resend_customer_portal_invitation", summary="Resend an invitation",
                   description="Issues a new token and expiry (the old link stops working); works on expired ones.",
                   request=None, responses={200: InvitationOutput, 409: _NOT_IN_THIS_STATE})  # fmt: skip
    @action(detail=True, methods=["post"])
    def resend(self, request: Request, id: str) -> Response:
        invitation = invitation_resend(portal=request_portal(request), invitation_id=id)
        return Response(InvitationOutput(invitation).data)

    @extend_schema(operation_id="accept_customer_portal_invitation", summary="Accept an invitation",
                   description="Creates the account (or checks the existing account's password), activates the "
                   "membership and returns a portal-scoped token pair.",
                   request=InvitationAcceptInput, responses=TokenPairOutput)  # fmt: skip
    @action(detail=False, methods=["post"])
    def accept(self, request: Request) -> Response:
        portal = request_portal(request)
        data = InvitationAcceptInput(data=request.data)
        data.is_valid(raise_exception=True)
        user, session = invitation_accept(portal=portal, **client_details(request), **data.validated_data)
        return Response(portal_token_pair(user=user, portal=portal, session=session))


class PortalStatsViewSet(viewsets.ViewSet):
    permission_classes = [IsPortalAdmin]

    @extend_schema(operation_id="get_customer_portal_stats", summary="Get customer portal statistics",
                   responses=PortalStatsOutput)  # fmt: skip
    def retrieve(self, request: Request) -> Response:
        return Response(PortalStatsOutput(portal_stats()).data)


@extend_schema_view(
    list=extend_schema(operation_id="list_customer_portal_sessions", summary="Get active portal sessions",
                       responses=PortalSessionOutput(many=True)),
    destroy=extend_schema(operation_id="end_customer_portal_session", summary="End a portal session",
                          responses={200: EmptyOutput}),
)  # fmt: skip
class PortalSessionViewSet(viewsets.ViewSet):
    permission_classes = [IsPortalAdmin]
    lookup_field = "id"

    def list(self, request: Request) -> Response:
        return Response(PortalSessionOutput(session_list_active(), many=True).data)

    def destroy(self, request: Request, id: str) -> Response:
        portal_session_end(session_id=id)
        return Response({})


class PortalAuditEventViewSet(viewsets.ViewSet):
    """The routed portal's trail (its organization's events about it), for that organization's admins."""

    permission_classes = [IsPortalAdmin]

    @extend_schema(operation_id="list_customer_portal_audit_events", summary="List the portal's audit events",
                   parameters=[PortalAuditEventPageQueryInput, LINK_HEADER],
                   responses=AuditEventOutput(many=True))  # fmt: skip
    def list(self, request: Request) -> Response:
        query = query_params_validated(PortalAuditEventPageQueryInput, request)
        portal = request_portal(request)
        assert portal.organization_id is not None
        events = audit_event_list(
            organization_ids=[portal.organization_id],
            portal_id=portal.id,
            action=query.get("action"),
            actor_email=query.get("actor_email"),
            since=query.get("since"),
            until=query.get("until"),
        )
        return audit_event_page_response(request, events, query)


class FeatureViewSet(viewsets.ViewSet):
    permission_classes = [IsPortalAdmin]
    lookup_field = "feature_id"
    lookup_value_regex = r"[^/]+"

    @extend_schema(operation_id="toggle_customer_portal_feature", summary="Toggle a portal feature",
                   description='Body optional: `{"enabled": true|false}` sets it; without it, the feature flips.',
                   request=FeatureToggleInput, responses=FeatureOutput)  # fmt: skip
    @action(detail=True, methods=["patch"])
    def toggle(self, request: Request, feature_id: str) -> Response:
        data = FeatureToggleInput(data=request.data or {})
        data.is_valid(raise_exception=True)
        return Response(FeatureOutput(feature_toggle(key=feature_id, **data.validated_data)).data)


def _own_session(request: Request) -> PortalSession:
    """The caller's portal session, on the views IsPortalUser guards (it lets only a portal session through)."""
    session = request_portal_session(request)
    assert session is not None
    return session


class MeViewSet(viewsets.ViewSet):
    permission_classes = [IsPortalUser]

    @extend_schema(operation_id="get_customer_portal_me", summary="The calling portal user",
                   responses=MeOutput)  # fmt: skip
    def retrieve(self, request: Request) -> Response:
        session = _own_session(request)
        portal = request_portal(request)
        config = portal_config_cached(
            portal.id, lambda: PortalConfigViewSet._config(request, portal_settings_get())
        )  # the portal summary comes with the cached config
        me = {"user": session.portal_user, "portal": config["portal"], "session": session}
        return Response(represent(MeOutput, me))


@extend_schema_view(
    list=extend_schema(operation_id="list_customer_portal_me_sessions", summary="The caller's own live sessions here",
                       responses=PortalSessionOutput(many=True)),
    destroy=extend_schema(operation_id="end_customer_portal_me_session", summary="End one of the caller's sessions",
                          description="Another member's session, or one that already ended, is a 404.",
                          responses={200: EmptyOutput}),
)  # fmt: skip
class MeSessionViewSet(viewsets.ViewSet):
    """A portal user's own sessions in this portal (API.md "The portal user's own sessions")."""

    permission_classes = [IsPortalUser]
    lookup_field = "id"

    def list(self, request: Request) -> Response:
        sessions = portal_user_session_list(portal_user_id=_own_session(request).portal_user_id)
        return Response(PortalSessionOutput(sessions, many=True).data)

    def destroy(self, request: Request, id: str) -> Response:
        portal_session_end(session_id=id, portal_user=_own_session(request).portal_user)
        return Response({})
