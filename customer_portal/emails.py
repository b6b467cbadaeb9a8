"""E-mails to portal users: one job per message, rendered from templates/customer_portal/email/.

A change that e-mails someone (an invite, a resend, a linked account) marks the row the e-mail is
about as `queued` with a new delivery key and queues the job in its own transaction
(`portal_emails_queue`): the job commits with the change, or rolls back with it and nothing is sent.
The worker renders and sends (`portal_email_deliver`) and records on the row how it went.

The invitation's secret link is never stored, neither in the row (only its hash) nor in the job: the
worker derives the token from the invitation's id and delivery key with the SECRET_KEY, and checks it
against the stored hash before it sends.
"""

import base64
import hashlib
import logging
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.utils import DNS_NAME
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django_tenants.utils import tenant_context
from procrastinate.types import JSONDict

from customer_portal.models import EmailDelivery, Invitation, PortalUser, SignInToken
from customer_portal.selectors import portal_settings_get
from portals.models import Portal
from portalsite.hostnames import absolute_url
from portalsite.jobs import app
from portalsite.mail import DeliveryFailure, PermanentDeliveryFailure, TemporaryDeliveryFailure, mail_send

logger = logging.getLogger(__name__)

EmailKind = Literal["invitation", "access_granted", "password_reset", "sign_in"]
DELIVER_TASK = "deliver_portal_email"  # customer_portal/tasks.py
DELIVERY_FIELDS = ["delivery_status", "delivery_attempts", "delivered_at", "delivery_error", "delivery_key"]

_SUBJECTS = {
    "invitation": "You are invited to {portal}",
    "access_granted": "You now have access to {portal}",
    "password_reset": "Reset your password for {portal}",
    "sign_in": "Your sign-in link for {portal}",
}
# HMAC salts, public by design.
_TOKEN_SALT = "customer_portal.invitation-token"  # noqa: S105
_SIGN_IN_TOKEN_SALT = "customer_portal.sign-in-token"  # noqa: S105
_SIGN_IN_CODE_SALT = "customer_portal.sign-in-code"
_KIND_OF_PURPOSE: dict[str, EmailKind] = {
    SignInToken.Purpose.PASSWORD_RESET: "password_reset",
    SignInToken.Purpose.EMAIL_SIGN_IN: "sign_in",
}


@dataclass(frozen=True)
class QueuedEmail:
    kind: EmailKind
    row_id: uuid.UUID
    key: str


def invitation_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _row_secret(salt: str, row_id: uuid.UUID, delivery_key: str, secret: str | bytes | None) -> bytes:
    return salted_hmac(salt, f"{row_id}:{delivery_key}", secret=secret, algorithm="sha256").digest()


def _url_safe(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def invitation_token(*, invitation_id: uuid.UUID, delivery_key: str, secret: str | bytes | None = None) -> str:
    """The secret of an invitation's link (256 bits, URL-safe): an HMAC of its id and delivery key under the
    SECRET_KEY (or `secret`). A new delivery key is a new token."""
    return _url_safe(_row_secret(_TOKEN_SALT, invitation_id, delivery_key, secret))


def sign_in_token(*, token_id: uuid.UUID, delivery_key: str, secret: str | bytes | None = None) -> str:
    """The secret of a password-reset or sign-in link, made as an invitation's is (under its own salt)."""
    return _url_safe(_row_secret(_SIGN_IN_TOKEN_SALT, token_id, delivery_key, secret))


def sign_in_code(*, token_id: uuid.UUID, delivery_key: str, secret: str | bytes | None = None) -> str:
    """The 6-digit code that goes with a sign-in link; never stored (it is rebuilt from the row to check it)."""
    number = int.from_bytes(_row_secret(_SIGN_IN_CODE_SALT, token_id, delivery_key, secret)[:8], "big")
    return f"{number % 1_000_000:06d}"


def sign_in_email_kind(token: SignInToken) -> EmailKind:
    return _KIND_OF_PURPOSE[token.purpose]


def delivery_new(row: EmailDelivery, *, kind: EmailKind, send: bool) -> QueuedEmail | None:
    """Give `row` a new message (a new delivery key: a job for an older one will find it stale): `queued`, or
    with `send=False` none at all. The caller saves DELIVERY_FIELDS and passes what this returns to
    `portal_emails_queue` in the same transaction."""
    row.delivery_key = secrets.token_hex(16)  # 128 random bits
    row.delivery_status = EmailDelivery.DeliveryStatus.QUEUED if send else ""
    row.delivery_attempts, row.delivered_at, row.delivery_error = 0, None, ""
    return QueuedEmail(kind=kind, row_id=row.pk, key=row.delivery_key) if send else None


def portal_emails_queue(*, portal: Portal, emails: Sequence[QueuedEmail]) -> None:
    """One delivery job per message, queued inside the caller's transaction in one statement, however many."""
    if not emails:
        return
    portal_id = str(portal.id)
    jobs: list[JSONDict] = [
        {"portal_id": portal_id, "kind": email.kind, "row_id": str(email.row_id), "key": email.key} for email in emails
    ]
    app.configure_task(DELIVER_TASK).batch_defer(*jobs)


def portal_url(portal: Portal, path: str, *, host: str = "") -> str:
    """An absolute URL on the portal's host: `host` (the one a request came to) while it still leads to this
    portal, else its custom domain once verified, else its default domain."""
    if not host or host not in (portal.default_domain, portal.verified_custom_domain):
        host = portal.link_domain
    return absolute_url(host, path)


# Delivery (the job) ---------------------------------------------------------------------------


def portal_email_deliver(*, portal_id: str, kind: EmailKind, row_id: str, key: str, last_try: bool) -> str:
    """Send one queued message and record the outcome on its row; returns what happened, for the log.

    Idempotent: a message already accepted by the mail server, or replaced by a newer one (its key is
    not the row's any more), is not sent again. A temporary failure is recorded and raised (the job is
    tried again) unless this is the `last_try`; then, as for a permanent failure, the row is `failed`
    with the server's answer.

    Lock contract: the row is locked while the message is handed to the mail server (at most
    EMAIL_TIMEOUT), so two runs of one message never send it twice; the attempt is counted, in a
    transaction of its own, before that.
    """
    portal = Portal.objects.filter(id=portal_id, is_spare=False).first()
    if portal is None:
        return "not sent: the portal was deleted"
    failure: DeliveryFailure | None = None
    with tenant_context(portal):
        with transaction.atomic():
            row, reason = _current(kind, row_id, key)
            if row is None:
                return reason
            row.delivery_attempts += 1
            row.save(update_fields=["delivery_attempts"])
        with transaction.atomic():
            row, reason = _current(kind, row_id, key)
            if row is None:
                return reason
            try:
                message = _render(portal, kind, row)
            except Exception:
                logger.exception("rendering %s e-mail %s for portal %s failed", kind, row_id, portal.slug)
                failure = PermanentDeliveryFailure("not sent: the message could not be rendered (see the worker's log)")
            else:
                try:
                    mail_send(message)
                except DeliveryFailure as exc:
                    failure = exc
            _record(row, failure, last_try=last_try)
    if isinstance(failure, TemporaryDeliveryFailure) and not last_try:
        raise failure
    if failure is not None:
        logger.warning("%s e-mail %s for portal %s failed: %s", kind, row_id, portal.slug, failure)
        return f"failed: {failure}"
    return "sent"


def _current(kind: EmailKind, row_id: str, key: str) -> tuple[EmailDelivery | None, str]:
    """The row, locked, if this message is still to be sent; else None and why not (recorded on the row
    where that explains its own status)."""
    row: EmailDelivery | None
    if kind == "invitation":
        row = Invitation.objects.select_for_update().select_related("portal_user").filter(id=row_id).first()
    elif kind in ("password_reset", "sign_in"):
        row = SignInToken.objects.select_for_update().select_related("portal_user").filter(id=row_id).first()
    else:
        row = PortalUser.objects.select_for_update().filter(id=row_id).first()
    if row is None:
        return None, "not sent: it was deleted"
    if row.delivery_key != key:
        return None, "not sent: a newer message replaced it"
    if row.delivery_status != EmailDelivery.DeliveryStatus.QUEUED:
        return None, f"not sent again: it is {row.delivery_status}"
    refusal = _refusal(row)
    if refusal is not None:
        row.delivery_status, row.delivery_error = EmailDelivery.DeliveryStatus.FAILED, refusal
        row.save(update_fields=["delivery_status", "delivery_error"])
        return None, refusal
    return row, ""


def _refusal(row: EmailDelivery) -> str | None:
    """Why this message must not go out now, if it must not: it would carry a link that no longer works."""
    if isinstance(row, Invitation):
        status = row.effective_status
        if status != Invitation.Status.PENDING:
            return f"not sent: the invitation was {status} before it could be delivered; resend it"
        if _token_for(row) is None:
            return "not sent: the SECRET_KEY changed since the invitation was made (no link can be rebuilt); resend it"
    elif isinstance(row, SignInToken):
        if not row.link_live(timezone.now()):
            return "not sent: the link was used or expired before it could be delivered"
        if row.portal_user.status != PortalUser.Status.ACTIVE:
            return f"not sent: the member is {row.portal_user.status}"
        if sign_in_secrets(row) is None:
            return "not sent: the SECRET_KEY changed since the link was made (no link can be rebuilt)"
    elif isinstance(row, PortalUser) and row.status != PortalUser.Status.ACTIVE:
        return f"not sent: the member is {row.status}"
    return None


def _rebuilt(token_hash: str, make: Callable[[str | bytes], str]) -> tuple[str | bytes, str] | None:
    """(secret, token) for the SECRET_KEY or fallback under which `make(secret)` gives the token behind
    `token_hash`; None if none does (the key it was made with is gone)."""
    for secret in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]:
        token = make(secret)
        if secrets.compare_digest(invitation_token_hash(token), token_hash):
            return secret, token
    return None


def _token_for(invitation: Invitation) -> str | None:
    """The invitation's token, rebuilt under the key it was made with; None if that key is gone."""
    found = _rebuilt(
        invitation.token_hash,
        lambda secret: invitation_token(
            invitation_id=invitation.id, delivery_key=invitation.delivery_key, secret=secret
        ),
    )
    return None if found is None else found[1]


def sign_in_secrets(row: SignInToken) -> tuple[str, str] | None:
    """The link's token and the code, rebuilt under the key the link was made with; None if that key is gone."""
    found = _rebuilt(
        row.token_hash, lambda secret: sign_in_token(token_id=row.id, delivery_key=row.delivery_key, secret=secret)
    )
    if found is None:
        return None
    secret, token = found
    return token, sign_in_code(token_id=row.id, delivery_key=row.delivery_key, secret=secret)


def _render(portal: Portal, kind: EmailKind, row: EmailDelivery) -> EmailMultiAlternatives:
    portal_settings = portal_settings_get()
    display_name = portal_settings.display_name or portal.name
    code = ""
    if isinstance(row, Invitation):
        member, token = row.portal_user, _token_for(row)
        link = portal_url(portal, f"/invite/{token}")
        message = row.message
    elif isinstance(row, SignInToken):
        member, message = row.portal_user, ""
        rebuilt = sign_in_secrets(row)
        assert rebuilt is not None  # _refusal checked it
        token, code = rebuilt
        page = "/password/reset/" if row.purpose == SignInToken.Purpose.PASSWORD_RESET else "/login/email/"
        link = portal_url(portal, f"{page}{token}", host=row.host)
    else:
        assert isinstance(row, PortalUser)
        member, link, message = row, portal_url(portal, "/login"), ""
    context = {
        "portal_name": display_name,
        "primary_color": portal_settings.safe_primary_color,
        "logo_url": portal_settings.logo_url,
        "support_email": portal_settings.support_email,
        "name": member.name,
        "message": message,
        "link": link,
        "expires_days": settings.PORTAL_INVITATION_TTL.days,
        "code": code,
        "link_minutes": _minutes(row.expires_at - row.created_at) if isinstance(row, SignInToken) else 0,
        "code_minutes": int(settings.EMAIL_SIGN_IN_CODE_TTL.total_seconds() // 60),
    }
    email = EmailMultiAlternatives(
        subject=_SUBJECTS[kind].format(portal=display_name),
        body=render_to_string(f"customer_portal/email/{kind}.txt", context),
        to=[member.email],
        # The same id on every try of one message: were it ever delivered twice (a worker killed between
        # the server's acceptance and our record of it), mail clients would show it once.
        headers={"Message-ID": f"<{row.delivery_key}.{kind}@{DNS_NAME}>"},
    )
    email.attach_alternative(render_to_string(f"customer_portal/email/{kind}.html", context), "text/html")
    return email


def _minutes(delta: timedelta) -> int:
    return max(1, round(delta.total_seconds() / 60))


def _record(row: EmailDelivery, failure: DeliveryFailure | None, *, last_try: bool) -> None:
    if failure is None:
        row.delivery_status, row.delivered_at, row.delivery_error = (
            EmailDelivery.DeliveryStatus.SENT,
            timezone.now(),
            "",
        )
    else:
        row.delivery_error = str(failure)
        if isinstance(failure, PermanentDeliveryFailure) or last_try:
            row.delivery_status = EmailDelivery.DeliveryStatus.FAILED
    row.save(update_fields=["delivery_status", "delivered_at", "delivery_error"])
