from typing import Any

from drf_spectacular import openapi
from drf_spectacular.plumbing import ComponentRegistry
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from portalsite.api.serializers import ErrorResponseSerializer, HTTPValidationErrorSerializer

_UUID_PATH_PARAMETERS = ("id", "portal_id", "user_id", "webhook_id", "delivery_id")
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    }
}
# Headers every response with this status carries (API.md, "Errors").
_ERROR_HEADERS: dict[str, dict[str, Any]] = {
    "401": {
        "WWW-Authenticate": {
            "description": "The scheme to authenticate with: `Bearer`.",
            "required": True,
            "schema": {"type": "string", "pattern": "^Bearer"},
        }
    },
    "429": _RETRY_AFTER,
    "503": _RETRY_AFTER,
}
_PORTAL_HEADER = OpenApiParameter(
    "X-Portal-ID",
    OpenApiTypes.UUID,
    OpenApiParameter.HEADER,
    description="On the API host, the portal this request is about (on a portal's own host, leave it out).",
)

# For the list operations that paginate (their views set it).
TOTAL_COUNT_HEADER = OpenApiParameter(
    "X-Total-Count",
    OpenApiTypes.INT,
    OpenApiParameter.HEADER,
    response=[200],
    required=True,
    description="How many items match in all, whatever `limit` and `offset`.",
)


# Operations are grouped by API group, the first path segment after /v1 (anything else: operations).
_TAGS = {
    "portal": "portal",
    "customer-portal": "customer-portal",
    "auth": "auth",
    "audit-events": "audit",
    "webhooks": "webhooks",
}


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema, plus the error responses every operation can give (API.md, "Errors") with
    their headers, UUID path parameters, and the X-Portal-ID header on /v1/customer-portal."""

    def get_tags(self) -> list[str]:
        segments = self.path.strip("/").split("/")
        group = segments[1] if len(segments) > 1 and segments[0] == "v1" else ""
        return [_TAGS.get(group, "operations")]

    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
        parameters += [
            OpenApiParameter(name, OpenApiTypes.UUID, OpenApiParameter.PATH)
            for name in _UUID_PATH_PARAMETERS
            if "{" + name + "}" in self.path
        ]
        if self.path.startswith("/v1/customer-portal/") or self.path.startswith("/v1/auth/"):
            parameters.append(_PORTAL_HEADER)
        return parameters

    def _map_serializer_field(self, field: Any, direction: str, bypass_extensions: bool = False) -> Any:
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if not isinstance(schema, dict) or "$ref" in schema:
            return schema
        if isinstance(field, serializers.ListSerializer):  # drf-spectacular leaves out a nested list's bounds
            # DRF's ListSerializer takes min_length/max_length (3.15+); its stubs do not declare them.
            min_length, max_length = getattr(field, "min_length", None), getattr(field, "max_length", None)
            if min_length is not None:
                schema["minItems"] = min_length
            if max_length is not None:
                schema["maxItems"] = max_length
        elif (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and not field.read_only
            and not field.allow_blank
            and schema.get("type") == "string"
            and "minLength" not in schema
        ):
            schema["minLength"] = 1  # DRF refuses "" unless allow_blank; say so
        return schema

    def get_operation(
        self, path: str, path_regex: str, path_prefix: str, method: str, registry: ComponentRegistry
    ) -> dict[str, Any] | None:
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation["responses"]
        errors: dict[str, tuple[Any, str]] = {"422": (HTTPValidationErrorSerializer, "Validation Error")}
        security = operation.get("security", [])
        if security and {} not in security:
            errors["401"] = (ErrorResponseSerializer, "Missing, malformed, expired or revoked token")
            errors["403"] = (ErrorResponseSerializer, "Authenticated but not allowed")
        if path.startswith("/v1/"):
            # An unknown or foreign portal (host or X-Portal-ID) or object; also a route the host does not serve
            # (/v1/portal on a portal's host).
            errors["404"] = (ErrorResponseSerializer, "Not found")
        if "requestBody" in operation:
            errors["413"] = (ErrorResponseSerializer, "Request body too large")
        if self.view.get_throttles():
            errors["429"] = (ErrorResponseSerializer, "Too many requests; see Retry-After")
        errors["503"] = (ErrorResponseSerializer, "The database is unavailable; see Retry-After")
        for code, (serializer, description) in errors.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(serializer, code)
                responses[code]["description"] = description
        for code, headers in _ERROR_HEADERS.items():
            if code in responses and _is_error_response(responses[code]):
                responses[code]["headers"] = {**headers, **responses[code].get("headers", {})}
        return operation


def _is_error_response(response: dict[str, Any]) -> bool:
    """Whether it is an `ErrorResponse` body (`{"detail": "..."}`), the error handler's, which sets the headers."""
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return str(schema.get("$ref", "")).endswith("/ErrorResponse")
