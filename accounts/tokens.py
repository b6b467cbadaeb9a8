"""Minting JWT pairs (simplejwt). Extra claims, such as the portal and session of a portal login, are the
caller's: `customer_portal.tokens` adds those."""

import time
from collections.abc import Mapping

from django.conf import settings
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User


def refresh_token_decode(raw: str) -> RefreshToken:
    """A refresh token from its encoded form; TokenError when malformed, expired or of another kind."""
    return RefreshToken(raw)  # type: ignore[arg-type]  # simplejwt annotates it as a Token; it takes the str


# When the login that started a refresh chain happened (Unix seconds). Rotation copies every claim, so it
# rides along through the whole chain; JWT_SESSION_MAX_AGE counts from it.
LOGIN_TIME_CLAIM = "auth_time"


def refresh_chain_check(token: RefreshToken) -> None:
    """TokenError when the chain `token` belongs to started more than JWT_SESSION_MAX_AGE ago.

    A token minted before the claim existed starts its chain now: the claim is added to it (and so to
    every token rotated from it), which bounds such chains too."""
    started = token.get(LOGIN_TIME_CLAIM)
    if started is None:
        token[LOGIN_TIME_CLAIM] = int(token.get("iat", time.time()))
        return
    if time.time() - int(started) > settings.JWT_SESSION_MAX_AGE.total_seconds():
        raise TokenError("This login is too old to be renewed; log in again.")


class ChainedRefreshToken(RefreshToken):
    """A refresh token that refuses to be renewed past JWT_SESSION_MAX_AGE after its chain's login."""

    def verify(self) -> None:
        super().verify()
        refresh_chain_check(self)


def token_pair(*, user: User, claims: Mapping[str, str] | None = None) -> dict[str, str]:
    """An access/refresh pair for `user`; `claims` go into both tokens, with the login time."""
    refresh = RefreshToken.for_user(user)
    refresh[LOGIN_TIME_CLAIM] = int(time.time())
    for name, value in (claims or {}).items():
        refresh[name] = value
    return {"access": str(refresh.access_token), "refresh": str(refresh)}
