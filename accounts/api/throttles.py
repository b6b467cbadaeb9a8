import hashlib
from typing import Any, cast

from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle
from rest_framework.views import APIView


def _rate(scope: str | None) -> str | None:
    """The rate of `scope`, read at request time: DRF binds THROTTLE_RATES at import, which ignores later settings."""
    rates = cast(dict[str, str | None], api_settings.DEFAULT_THROTTLE_RATES)  # rate strings ("20/min")
    return rates.get(scope) if scope else None


class AuthRateThrottle(AnonRateThrottle):
    """Per-client-IP limit on the credential endpoints (`AUTH_THROTTLE_RATE`)."""

    scope = "auth"

    def get_rate(self) -> str | None:
        return _rate(self.scope)


class InviteRateThrottle(UserRateThrottle):
    """Per-account limit on the endpoints that send invitation e-mails (`INVITE_THROTTLE_RATE`)."""

    scope = "invite"

    def get_rate(self) -> str | None:
        return _rate(self.scope)


class EmailAddressThrottle(SimpleRateThrottle):
    """Per-address limit on what e-mails a link to an address (`EMAIL_THROTTLE_RATE`), so that no one can flood
    a mailbox. It counts the requests for an address whether or not it has an account: its 429 tells nothing."""

    scope = "email"

    def __init__(self, *, email: str) -> None:
        self.address = hashlib.sha256(email.strip().lower().encode()).hexdigest()  # no address kept in the cache
        super().__init__()

    def get_rate(self) -> str | None:
        return _rate(self.scope)

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.address}


def email_throttle_wait(*, email: str, request: Any) -> int | None:
    """None when another e-mail to `email` is within its budget (and counts it); else the seconds to wait."""
    throttle = EmailAddressThrottle(email=email)
    if throttle.allow_request(request, APIView()):  # the view is not consulted
        return None
    return max(1, round(throttle.wait() or 1))
