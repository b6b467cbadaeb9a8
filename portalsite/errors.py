"""Domain errors raised by services; the API exception handler and commands map them."""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One invalid value: `loc` is its path inside the request, e.g. ("users", 3, "email")."""

    loc: tuple[str | int, ...]
    msg: str
    type: str = "value_error"


class ApplicationError(Exception):
    """A request that the domain refuses.

    With field errors (`loc`, or several `field_errors`) it is a validation error and
    becomes a 422 `HTTPValidationError`; without, a `{"detail": message}` body with `status`.
    """

    def __init__(
        self,
        message: str,
        *,
        loc: Sequence[str | int] | None = None,
        status: int = 422,
        code: str = "value_error",
        loc_root: str = "body",
        field_errors: Sequence[FieldError] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.loc_root = loc_root
        self.field_errors = tuple(field_errors) or ((FieldError(tuple(loc), message, code),) if loc is not None else ())


class NotFoundError(ApplicationError):
    """The object does not exist, or is outside the caller's reach (the two look the same)."""

    def __init__(self, message: str = "Not found.") -> None:
        super().__init__(message, status=404)


def uuid_or_not_found(value: uuid.UUID | str) -> uuid.UUID:
    """A UUID from a path or header value; a malformed one is a missing object (404), never a 500."""
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise NotFoundError() from exc


def valid_uuids(values: Iterable[uuid.UUID | str]) -> list[uuid.UUID]:
    """The well-formed UUIDs among `values` (ids ticked in a form): a malformed one names nothing."""
    valid = []
    for value in values:
        try:
            valid.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    return valid
