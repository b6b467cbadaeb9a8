import uuid

from django.contrib.auth import password_validation
from django.contrib.auth.models import update_last_login
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.errors import AccountsError
from accounts.models import Organization, OrgMembership, User
from accounts.password_reset import DELIVER_TASK, reset_accounts, reset_token_user
from accounts.signals import account_signed_out_everywhere
from accounts.tokens import refresh_token_decode, token_pair
from portalsite.errors import FieldError
from portalsite.jobs import app
from portalsite.slugs import unique_slug

INVALID_RESET_LINK = "This link is not valid: it may have been used, replaced by a newer one, or expired."


def normalize_email(email: str) -> str:
    """Trimmed e-mail, validated; raises AccountsError(loc=("email",)) when invalid."""
    email = email.strip()
    try:
        validate_email(email)
    except DjangoValidationError as exc:
        raise AccountsError("Enter a valid email address.", loc=("email",)) from exc
    return User.objects.normalize_email(email)


@transaction.atomic
def user_create(*, email: str, password: str | None, name: str = "") -> User:
    """Create a global account. `password=None` makes an account that cannot log in yet."""
    email = normalize_email(email)
    if User.objects.filter(email__iexact=email).exists():
        raise AccountsError("An account with this email already exists.", loc=("email",), code="unique")
    try:
        with transaction.atomic():
            return User.objects.create_user(email=email, password=password, name=name)
    except IntegrityError as exc:  # a concurrent create of the same e-mail won the race
        raise AccountsError("An account with this email already exists.", loc=("email",), code="unique") from exc


@transaction.atomic
def organization_create(
    *,
    name: str,
    admin_email: str,
    admin_password: str | None = None,
    environment: str = Organization.Environment.PRODUCTION,
) -> tuple[Organization, User, bool]:
    """Create an organization and make `admin_email` its admin.

    An existing account with that e-mail becomes the admin as it is (its password is
    left alone); otherwise one is created, with `admin_password` (None: it cannot log in
    until a password is set). Returns (organization, admin, admin_created).
    """
    name = name.strip()
    if not name:
        raise AccountsError("Organization name must not be blank.", loc=("name",))
    if Organization.objects.filter(name__iexact=name).exists():
        raise AccountsError(f"An organization named {name!r} already exists.", loc=("name",), code="unique")
    email = normalize_email(admin_email)
    admin = User.objects.filter(email__iexact=email).first()
    admin_created = admin is None
    if admin is None:
        admin = user_create(email=email, password=admin_password)
    organization = Organization.objects.create(
        name=name,
        slug=unique_slug(base=slugify(name) or "org", queryset=Organization.objects.all()),
        environment=environment,
    )
    OrgMembership.objects.create(user=admin, organization=organization, role=OrgMembership.Role.ADMIN)
    return organization, admin, admin_created


@transaction.atomic
def refresh_token_revoke(*, refresh: str) -> RefreshToken:
    """Log out: blacklist the refresh token and return it.

    Raises InvalidToken (401) when the token is malformed, expired or already revoked.
    """
    try:
        token = refresh_token_decode(refresh)
        token.blacklist()
    except TokenError as exc:
        raise InvalidToken(exc.args[0]) from exc
    return token


def account_login(*, user: User) -> dict[str, str]:
    """An account-level token pair (org admins on the API host); records the login time."""
    update_last_login(User, user)
    return token_pair(user=user)


@transaction.atomic
def account_refresh_tokens_revoke(*, user_id: uuid.UUID | str) -> int:
    """Blacklist every refresh token of the account that is still valid; returns how many."""
    live = OutstandingToken.objects.filter(
        user_id=user_id, expires_at__gt=timezone.now(), blacklistedtoken__isnull=True
    )
    revoked = BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token_id=token_id) for token_id in live.values_list("id", flat=True)], ignore_conflicts=True
    )
    return len(revoked)


def account_sign_out_everywhere(*, user_id: uuid.UUID | str) -> None:
    """Every refresh token of the account dies, and `account_signed_out_everywhere` tells the apps above
    (portal sessions live in each portal's schema, which this app does not know)."""
    with transaction.atomic():
        account_refresh_tokens_revoke(user_id=user_id)
        account_signed_out_everywhere.send(sender=User, user_id=user_id)


def expired_tokens_flush() -> int:
    """Delete refresh-token rows past their expiry (their blacklist rows go with them, by cascade): the clean-up
    a periodic job runs, as simplejwt's `flushexpiredtokens` command does. Returns the rows deleted."""
    deleted, _ = OutstandingToken.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted


def password_errors(*, password: str, user: User, loc: str = "password") -> list[FieldError]:
    """What Django's password validators (AUTH_PASSWORD_VALIDATORS) say against `password` for `user`."""
    try:
        password_validation.validate_password(password, user)
    except DjangoValidationError as exc:
        return [FieldError((loc,), message) for message in exc.messages]
    return []


@transaction.atomic
def account_password_set(*, user: User, password: str, loc: str = "password") -> None:
    """Give the account a new password (Django's validators decide: AccountsError at `loc`), and end every
    refresh token and portal session it has (a reset or a change: whoever held the old one is out)."""
    errors = password_errors(password=password, user=user, loc=loc)
    if errors:
        raise AccountsError(" ".join(error.msg for error in errors), field_errors=errors)
    user.set_password(password)
    user.save(update_fields=["password"])
    account_sign_out_everywhere(user_id=user.pk)


def account_password_reset_request(*, email: str, host: str) -> None:
    """Mail a reset link to the org admin with this e-mail (one job each, queued in this transaction); for
    any other address nothing happens, and nothing tells the caller which it was. `host`: the main host asked
    on (routed, without its port), which the link goes back to."""
    with transaction.atomic():
        for user in reset_accounts(email=email):
            app.configure_task(DELIVER_TASK).defer(user_id=str(user.pk), host=host)


def account_password_reset(*, token: str, password: str) -> User:
    """Set a new password with a main-host reset link (AccountsError at `token` when it is not live, or at
    `password` from the validators); every session and refresh token of the account ends."""
    user = reset_token_user(token) if len(token) <= 200 else None
    if user is None:
        raise AccountsError(INVALID_RESET_LINK, loc=("token",))
    account_password_set(user=user, password=password)
    return user
