"""Login throttling by account and by client IP (django-axes), for the admin login and POST /v1/auth/token.

Axes counts failed `authenticate()` calls in the database (so every instance shares them) and refuses
further attempts for an account, or from an IP, once AXES_FAILURE_LIMIT is reached, until
AXES_COOLOFF_TIME has passed: even with the right password. The admin gets a page that says so (429),
the API a 429 with Retry-After. A correct login resets the account's count.
"""

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def login_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    """The account a login names: `email` on the API, `username` on the admin form; compared lower-case."""
    credentials = credentials or {}
    value = credentials.get("email") or credentials.get("username")
    return str(value).strip().lower()[:254] if value else None


def client_ip(request: HttpRequest) -> str:
    """The client address as the API throttles see it: REMOTE_ADDR, or the NUM_PROXIES-th address from the
    right of X-Forwarded-For behind declared proxies (a client can prepend anything to that header)."""
    remote = str(request.META.get("REMOTE_ADDR") or "")
    forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR") or "")
    proxies: int = settings.NUM_PROXIES
    if proxies and forwarded:
        addresses = [address.strip() for address in forwarded.split(",") if address.strip()]
        if addresses:
            return addresses[-min(proxies, len(addresses))]
    return remote


def lockout_seconds() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())
