from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


class AuthRateThrottle(AnonRateThrottle):
    """Per-client-IP limit on the credential endpoints (`AUTH_THROTTLE_RATE`)."""

    scope = "auth"

    def get_rate(self) -> str | None:
        # Read at request time: DRF binds THROTTLE_RATES at import, which ignores later settings.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class InviteRateThrottle(UserRateThrottle):
    """Per-account limit on the endpoints that send invitation e-mails (`INVITE_THROTTLE_RATE`)."""

    scope = "invite"

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
