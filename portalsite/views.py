from django.db import connection
from django.http import HttpRequest, JsonResponse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from portalsite.db import database_is_reachable


@extend_schema(
    operation_id="healthz",
    summary="Liveness and database reachability",
    responses={
        (200, "application/json"): inline_serializer(
            "HealthResponse", {"status": serializers.CharField(), "database": serializers.CharField()}
        )
    },
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([permissions.AllowAny])
def healthz(request: Request) -> Response:
    if database_is_reachable():
        return Response({"status": "ok", "database": "ok"})
    return Response({"status": "error", "database": "unavailable"}, status=503)


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """handler404, and the catch-all under the API prefixes: JSON even with DEBUG on."""
    return JsonResponse({"detail": "Not found."}, status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    connection.set_schema_to_public()  # the failed request may have left a portal schema selected
    return JsonResponse({"detail": "Internal server error."}, status=500)
