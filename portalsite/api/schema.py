from typing import Any

from drf_spectacular import openapi
from drf_spectacular.plumbing import ComponentRegistry

from portalsite.api.serializers import ErrorResponseSerializer, HTTPValidationErrorSerializer


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema, plus the error responses every operation can give (API.md, "Errors")."""

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
