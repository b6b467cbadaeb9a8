import contextlib
import sys

from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from portalsite.api.exception_handler import DATABASE_UNAVAILABLE_BODY, DATABASE_UNAVAILABLE_HEADERS
from portalsite.db import database_is_reachable, tenant_connection

_HEALTH_UNAVAILABLE = {"status": "error", "database": "unavailable"}


_HEALTH = inline_serializer("HealthResponse", {"status": serializers.CharField(), "database": serializers.CharField()})


@extend_schema(
    operation_id="healthz",
    summary="Liveness and database reachability",
    responses={
        (code, "application/json"): OpenApiResponse(_HEALTH, description)
        for code, description in ((200, "Up, and the database answers"), (503, "The database is unavailable"))
    },
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([permissions.AllowAny])
def healthz(request: Request) -> Response:
    if database_is_reachable():
        return Response({"status": "ok", "database": "ok"})
    return Response(_HEALTH_UNAVAILABLE, status=503)


@csrf_exempt  # the catch-all answers every method: a POST there is a 404, not an HTML CSRF failure page
def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """handler404, and the catch-all under the API prefixes: JSON even with DEBUG on."""
    return JsonResponse({"detail": "Not found."}, status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    """handler500: JSON; a database outage outside the API views (e.g. in middleware) is a 503, as inside them.

    Django calls it inside its `except` block, so the exception is `sys.exc_info()`.
    """
    tenant_connection.set_schema_to_public()  # the failed request may have left a portal schema selected
    if isinstance(sys.exc_info()[1], OperationalError | InterfaceError):
        # Drop the broken connection now: the next request reconnects instead of reusing it.
        with contextlib.suppress(DatabaseError):
            connection.close()
        # /healthz keeps its own shape even when the failure came before it ran (a portal host not yet routed).
        body = _HEALTH_UNAVAILABLE if request.path == "/healthz" else DATABASE_UNAVAILABLE_BODY
        response = JsonResponse(body, status=503)
        for name, value in DATABASE_UNAVAILABLE_HEADERS.items():
            response[name] = value
        return response
    return JsonResponse({"detail": "Internal server error."}, status=500)
