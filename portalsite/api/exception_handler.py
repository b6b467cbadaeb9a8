"""The one place that turns exceptions into API error bodies (see API.md, "Errors").

Validation problems become 422 `{"detail": [{"loc", "msg", "type"}]}` with `loc`
walked out of nested serializer errors; everything else is `{"detail": "..."}`.
"""

import math
from collections.abc import Iterator
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from portalsite.errors import ApplicationError

# DRF error codes that have a more telling name in the HTTPValidationError vocabulary.
_ERROR_TYPES = {
    "required": "missing",
    "null": "missing",
    "blank": "string_too_short",
    "min_length": "string_too_short",
    "max_length": "string_too_long",
    "not_a_list": "list_type",
    "not_a_dict": "dict_type",
    "empty": "too_short",
    "unknown_field": "extra_forbidden",
    "parse_error": "json_invalid",
    "unsupported_media_type": "content_type",
}
# Keys DRF uses for errors about the object itself rather than one field.
_OBJECT_LEVEL_KEYS = {"non_field_errors", "__all__"}

# An unreachable database (OperationalError, InterfaceError) is a 503 that asks to retry, never a 500:
# here inside the API views, and in portalsite.views.server_error when it happens outside them (middleware).
DATABASE_UNAVAILABLE_BODY = {"detail": "The database is unavailable; try again shortly."}
DATABASE_UNAVAILABLE_HEADERS = {"Retry-After": "5"}


def validation_error_items(detail: Any, loc: tuple[str | int, ...]) -> Iterator[dict[str, Any]]:
    """Flatten DRF's nested error detail into HTTPValidationError items."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            yield from validation_error_items(value, loc if key in _OBJECT_LEVEL_KEYS else (*loc, key))
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            # A list of messages stays at `loc`; a list of objects (a nested many=True) is indexed.
            yield from validation_error_items(value, (*loc, index) if isinstance(value, dict | list) else loc)
    else:
        code = getattr(detail, "code", None) or "invalid"
        yield {"loc": list(loc), "msg": str(detail), "type": _ERROR_TYPES.get(code, "value_error")}


def _authenticate_header(context: dict[str, Any]) -> str:
    view, request = context.get("view"), context.get("request")
    header = view.get_authenticate_header(request) if view is not None and request is not None else None
    return header or "Bearer"


def validation_error_response(items: list[dict[str, Any]]) -> Response:
    return Response({"detail": items}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    set_rollback()  # whatever the error, nothing the request wrote may be committed
    if isinstance(exc, ApplicationError):
        if exc.field_errors:
            return validation_error_response(
                [
                    {"loc": [exc.loc_root, *error.loc], "msg": error.msg, "type": error.type}
                    for error in exc.field_errors
                ]
            )
        # A refused login is a 401 like any other: it names the scheme to authenticate with.
        headers = {"WWW-Authenticate": _authenticate_header(context)} if exc.status == 401 else None
        return Response({"detail": exc.message}, status=exc.status, headers=headers)
    if isinstance(exc, exceptions.ValidationError):
        loc_root = getattr(exc, "loc_root", "body")
        return validation_error_response(list(validation_error_items(exc.detail, (loc_root,))))
    if isinstance(exc, exceptions.ParseError | exceptions.UnsupportedMediaType):
        code = "parse_error" if isinstance(exc, exceptions.ParseError) else "unsupported_media_type"
        return validation_error_response([{"loc": ["body"], "msg": str(exc.detail), "type": _ERROR_TYPES[code]}])
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": "Request body too large."}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, OperationalError | InterfaceError):
        return Response(
            dict(DATABASE_UNAVAILABLE_BODY),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers=dict(DATABASE_UNAVAILABLE_HEADERS),
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()  # Django's message names the model; the contract says "Not found."
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: Django's handler500 answers with a JSON 500 and logs it

    headers = {}
    # Set by DRF's view on NotAuthenticated/AuthenticationFailed, and by Throttled.
    auth_header, wait = getattr(exc, "auth_header", None), getattr(exc, "wait", None)
    if auth_header:
        headers["WWW-Authenticate"] = str(auth_header)
    if wait:
        headers["Retry-After"] = str(math.ceil(wait))
    detail: object = exc.detail
    if isinstance(detail, dict):  # simplejwt wraps its message with code and messages
        detail = detail.get("detail", exc.default_detail)
    return Response({"detail": str(detail)}, status=exc.status_code, headers=headers)
