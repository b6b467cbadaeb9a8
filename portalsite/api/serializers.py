"""Serializers shared by both API groups: strict input, cheap output and the error bodies."""

import functools
from collections.abc import Mapping
from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.request import Request

_UNKNOWN_FIELD = ErrorDetail("Unknown field.", code="unknown_field")


class RejectUnknownFieldsMixin:
    """Refuse keys the serializer does not declare as writable (a typo must not be silently ignored)."""

    def to_internal_value(self, data: Any) -> Any:
        unknown: dict[str, list[ErrorDetail]] = {}
        if isinstance(data, Mapping):
            writable = {name for name, field in self.fields.items() if not field.read_only}  # type: ignore[attr-defined]
            unknown = {key: [_UNKNOWN_FIELD] for key in data if key not in writable}
        try:
            value = super().to_internal_value(data)  # type: ignore[misc]
        except ValidationError as exc:
            # Report unknown keys beside the other field errors, not instead of them.
            raise ValidationError({**exc.detail, **unknown} if isinstance(exc.detail, dict) else exc.detail) from exc
        if unknown:
            raise ValidationError(unknown)
        return value


# Request bodies and query strings are validated into plain dicts: they serialize no instance.
AnySerializer = serializers.Serializer[Any]


# Bounds for every integer query parameter: unbounded, `?offset=99999999999999999999999` reached PostgreSQL
# as a bigint out of range (a 500). No list has anywhere near this many rows.
MAX_PAGE_SIZE = 10_000
MAX_OFFSET = 2**31 - 1


def limit_field() -> serializers.IntegerField:
    return serializers.IntegerField(required=False, min_value=1, max_value=MAX_PAGE_SIZE)


def offset_field() -> serializers.IntegerField:
    return serializers.IntegerField(required=False, min_value=0, max_value=MAX_OFFSET, default=0)


class InputSerializer(RejectUnknownFieldsMixin, AnySerializer):
    """Base for request bodies."""


def query_params_validated(serializer_class: type[AnySerializer], request: Request) -> dict[str, Any]:
    """Validate the query string with `serializer_class`; its errors are located under "query"."""
    serializer = serializer_class(data=request.query_params.dict())
    try:
        serializer.is_valid(raise_exception=True)
    except ValidationError as exc:
        exc.loc_root = "query"  # type: ignore[attr-defined]  # read by the exception handler
        raise
    validated: dict[str, Any] = serializer.validated_data
    return validated


@functools.cache
def _output_serializer(serializer_class: type[AnySerializer]) -> AnySerializer:
    return serializer_class()


def represent(serializer_class: type[AnySerializer], instance: Any) -> dict[str, Any]:
    """`serializer_class(instance).data` without building the serializer's fields again.

    DRF builds every field of a serializer per instance (a ModelSerializer introspects its model
    to do so): most of the cost of a small response. One instance per class serves every call, as
    `to_representation` only reads it. For output serializers that need no context.
    """
    representation: dict[str, Any] = _output_serializer(serializer_class).to_representation(instance)
    return representation


class ErrorResponseSerializer(AnySerializer):
    detail = serializers.CharField()

    class Meta:
        ref_name = "ErrorResponse"


class ValidationErrorItemSerializer(AnySerializer):
    loc = serializers.ListField(
        child=serializers.JSONField(),
        help_text="Path to the offending value: body, query or path first, then keys and list indexes.",
    )
    msg = serializers.CharField()
    type = serializers.CharField()

    class Meta:
        ref_name = "ValidationError"


class HTTPValidationErrorSerializer(AnySerializer):
    detail = ValidationErrorItemSerializer(many=True)

    class Meta:
        ref_name = "HTTPValidationError"
