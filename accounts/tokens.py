"""Minting JWT pairs (simplejwt). Extra claims, such as the portal and session of a portal login, are the
caller's: `customer_portal.tokens` adds those."""

from collections.abc import Mapping

from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User


def refresh_token_decode(raw: str) -> RefreshToken:
    """A refresh token from its encoded form; TokenError when malformed, expired or of another kind."""
    return RefreshToken(raw)  # type: ignore[arg-type]  # simplejwt annotates it as a Token; it takes the str


def token_pair(*, user: User, claims: Mapping[str, str] | None = None) -> dict[str, str]:
    """An access/refresh pair for `user`; `claims` go into both tokens."""
    refresh = RefreshToken.for_user(user)
    for name, value in (claims or {}).items():
        refresh[name] = value
    return {"access": str(refresh.access_token), "refresh": str(refresh)}
