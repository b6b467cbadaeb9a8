"""Domain errors raised by services; the API exception handler and commands map them."""

from collections.abc import Sequence


class ApplicationError(Exception):
    """A request that the domain refuses.

    With `loc` (a path inside the request, such as `("users", 3, "email")`) it is a
    validation error and becomes a 422 `HTTPValidationError`; without it, a
    `{"detail": message}` body with `status`.
    """

    def __init__(
        self,
        message: str,
        *,
        loc: Sequence[str | int] | None = None,
        status: int = 422,
        code: str = "value_error",
        loc_root: str = "body",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.loc = tuple(loc) if loc is not None else None
        self.status = status
        self.code = code
        self.loc_root = loc_root
