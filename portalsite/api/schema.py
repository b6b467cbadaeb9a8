from typing import Any

from drf_spectacular import openapi
from drf_spectacular.plumbing import ComponentRegistry
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

from portalsite.api.serializers import ErrorResponseSerializer, HTTPValidationErrorSerializer

_UUID_PATH_PARAMETERS = ("id", "portal_id", "user_id")
_PORTAL_HEADER = OpenApiParameter(
    "X-Portal-ID",
    OpenApiTypes.UUID,
    OpenApiParameter.HEADER,
    description="On the API host, the portal this request is about (on a portal's own host, leave it out).",
)


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema, plus the error responses every operation can give (API.md, "Errors"),
    UUID path parameters, and the X-Portal-ID header on /v1/customer-portal."""

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
        if "{" in path:
            errors["404"] = (ErrorResponseSerializer, "Not found")
        if self.view.get_throttles():
            errors["429"] = (ErrorResponseSerializer, "Too many requests; see Retry-After")
        for code, (serializer, description) in errors.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(serializer, code)
                responses[code]["description"] = description
        return operation
