from typing import cast

from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


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
