"""What one request remembers, and the Django request behind DRF's.

DRF's `Request` wraps Django's `HttpRequest` and keeps it as `request._request`
(rest_framework/request.py); reads of unknown attributes fall through to it, writes do not.
`django_request` is the one place that reaches in, so that attributes set during a request
(`tenant` by the routing middleware, `portal_session` by the authentication, the memo below)
are seen alike by middleware, permissions and views. If DRF renames that attribute,
tests/test_requests.py fails first.
"""

from collections.abc import Callable
from typing import Any, TypedDict, TypeVar, cast

from django.http import HttpRequest
from rest_framework.request import Request

T = TypeVar("T")

_MEMO_ATTRIBUTE = "portalsite_memo"


def django_request(request: HttpRequest | Request) -> HttpRequest:
    """Django's request, given either kind."""
    return request._request if isinstance(request, Request) else request


def request_memo(request: HttpRequest | Request, key: str, compute: Callable[[], T]) -> T:
    """`compute()` once per request and `key` (an answer several checks of one request ask for again)."""
    memo: dict[str, Any] = django_request(request).__dict__.setdefault(_MEMO_ATTRIBUTE, {})
    if key not in memo:
        memo[key] = compute()
    return cast(T, memo[key])


class ClientDetails(TypedDict):
    ip_address: str | None
    user_agent: str


def client_details(request: HttpRequest | Request) -> ClientDetails:
    """What a new session records about who opened it."""
    return {
        "ip_address": request.META.get("REMOTE_ADDR") or None,
        "user_agent": request.META.get("HTTP_USER_AGENT", ""),
    }
