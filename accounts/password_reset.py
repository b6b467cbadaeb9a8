"""Password reset for org admins on the main host: Django's stateless reset tokens, e-mailed by a job.

Django's `default_token_generator` makes the token from the account's password hash and last login, so a
token dies when the password changes (single use) and after PASSWORD_RESET_TIMEOUT (PASSWORD_RESET_TTL).
The link is `/password/reset/<uidb64>.<token>` on the main host asked on (PORTAL_URL_SCHEME and _PORT).
The e-mail is one job (the e-mail queue, EMAIL_RETRY_SCHEDULE, like every e-mail): it carries the account
id, never a token; the worker makes the token when it sends, so no secret waits in the job table.
"""

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from accounts.models import OrgMembership, User
from portalsite.hostnames import absolute_url

DELIVER_TASK = "deliver_account_password_reset"  # accounts/tasks.py
SEPARATOR = "."  # in neither urlsafe base64 nor Django's tokens


def reset_accounts(*, email: str) -> list[User]:
    """The accounts a main-host reset for `email` may reach: active org admins (and operators) with a password."""
    users = User.objects.filter(email__iexact=email.strip(), is_active=True)
    admins = users.filter(org_memberships__role=OrgMembership.Role.ADMIN) | users.filter(is_staff=True)
    return [user for user in admins.distinct() if user.has_usable_password()]


def reset_token_make(user: User) -> str:
    return f"{urlsafe_base64_encode(force_bytes(user.pk))}{SEPARATOR}{default_token_generator.make_token(user)}"


def reset_token_user(token: str) -> User | None:
    """The account a live main-host reset token is for, or None (malformed, used, expired, unknown)."""
    uidb64, _, django_token = token.partition(SEPARATOR)
    try:
        user_id = urlsafe_base64_decode(uidb64).decode()
        user = User.objects.filter(pk=user_id, is_active=True).first()
    except (ValueError, TypeError, OverflowError, UnicodeDecodeError):
        return None
    if user is None or not default_token_generator.check_token(user, django_token):
        return None
    return user


def reset_email_render(*, user: User, host: str) -> EmailMultiAlternatives:
    context = {"link": absolute_url(host, f"/password/reset/{reset_token_make(user)}"), "email": user.email,
               "minutes": settings.PASSWORD_RESET_TIMEOUT // 60, "name": user.name}  # fmt: skip
    message = EmailMultiAlternatives(
        subject="Reset your portalsite password",
        body=render_to_string("accounts/email/password_reset.txt", context),
        to=[user.email],
    )
    return message
