"""Writes inside one portal's schema. Callers select the schema (`tenant_context(portal)`)."""

import hashlib
import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.models import User
from customer_portal.emails import PortalEmail, portal_emails_send
from customer_portal.errors import CustomerPortalError
from customer_portal.models import Invitation, PortalSettings, PortalUser
from customer_portal.selectors import portal_settings_get
from portalsite.errors import FieldError, NotFoundError

if TYPE_CHECKING:
    from portals.models import Portal

logger = logging.getLogger(__name__)

InviteStatus = Literal["invited", "linked", "already_member"]


@dataclass(frozen=True)
class InviteEntry:
    email: str
    name: str = ""
    role: str = PortalUser.Role.MEMBER


@dataclass(frozen=True)
class InviteResult:
    email: str
    status: InviteStatus
    user: PortalUser


@dataclass
class InviteOutcome:
    results: list[InviteResult] = field(default_factory=list)

    def count(self, status: InviteStatus) -> int:
        return sum(1 for result in self.results if result.status == status)


def invitation_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_invitation(
    *, portal_user: PortalUser, invited_by: str, now: datetime, message: str = ""
) -> tuple[Invitation, str]:
    """An unsaved invitation and its secret token (256 random bits; only the hash is stored)."""
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        portal_user=portal_user,
        token_hash=invitation_token_hash(token),
        invited_by=invited_by,
        message=message,
        created_at=now,
        expires_at=now + settings.PORTAL_INVITATION_TTL,
    )
    return invitation, token


def portal_settings_initialize(*, display_name: str) -> None:
    """Give a new portal's settings row its display name (the row itself comes from migration 0002)."""
    PortalSettings.objects.filter(id=1).update(display_name=display_name, updated_at=timezone.now())


def _email_domain_errors(entries: Sequence[InviteEntry], allowed: Sequence[str]) -> list[FieldError]:
    allowed_domains = {domain.lower() for domain in allowed}
    return [
        FieldError(("users", index, "email"), f"Only addresses at {', '.join(sorted(allowed_domains))} may be invited.")
        for index, entry in enumerate(entries)
        if entry.email.rsplit("@", 1)[-1].lower() not in allowed_domains
    ]


def portal_users_invite(
    *,
    portal: "Portal",
    entries: Sequence[InviteEntry],
    invited_by: User | None,
    send_email: bool = True,
    dry_run: bool = False,
    message: str = "",
) -> InviteOutcome:
    """Invite people to the current portal, linking e-mails that already have an account.

    Per e-mail (compared case-insensitively; duplicates collapse to the first): an existing
    member is `already_member`; an account holder is `linked` (active at once); anyone else is
    `invited` (a pending invitation). A revoked member is restored the same way. The query count
    does not depend on the number of entries. `dry_run` computes the same outcome and writes
    nothing. E-mails go out after commit; a mail failure is logged and never undoes the invite.

    Lock contract: invites to one portal are serialized (a transaction-level advisory lock), so
    concurrent invites of the same e-mail end as one membership.
    """
    if dry_run:
        outcome, _ = _invite(portal=portal, entries=entries, invited_by=invited_by, message=message, write=False)
        return outcome
    with transaction.atomic():
        outcome, emails = _invite(portal=portal, entries=entries, invited_by=invited_by, message=message, write=True)
        if send_email and emails:
            transaction.on_commit(lambda: portal_emails_send(portal=portal, emails=emails))
    return outcome


def _invite(
    *, portal: "Portal", entries: Sequence[InviteEntry], invited_by: User | None, message: str, write: bool
) -> tuple[InviteOutcome, list[PortalEmail]]:
    portal_settings = portal_settings_get()
    if portal_settings.allowed_email_domains:
        errors = _email_domain_errors(entries, portal_settings.allowed_email_domains)
        if errors:
            raise CustomerPortalError("Some e-mail domains are not allowed in this portal.", field_errors=errors)

    unique: dict[str, InviteEntry] = {}
    for entry in entries:
        unique.setdefault(entry.email.strip().lower(), entry)
    emails = list(unique)
    if write:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"invite:{portal.schema_name}"])

    accounts = dict(
        User.objects.annotate(email_lower=Lower("email"))
        .filter(email_lower__in=emails)
        .values_list("email_lower", "id")
    )
    members: dict[str, PortalUser] = {}
    for member in PortalUser.objects.annotate(email_lower=Lower("email")).filter(
        Q(email_lower__in=emails) | Q(global_user_id__in=accounts.values())
    ):
        members[member.email_lower] = member
        members.setdefault(f"id:{member.global_user_id}", member)

    now = timezone.now()
    inviter = invited_by.email if invited_by else ""
    outcome = InviteOutcome()
    created: list[PortalUser] = []
    restored: list[PortalUser] = []
    invitations: list[Invitation] = []
    mail: list[PortalEmail] = []
    for email, entry in unique.items():
        account_id = accounts.get(email)
        member = members.get(email) or (members.get(f"id:{account_id}") if account_id else None)
        if member is not None and member.status != PortalUser.Status.REVOKED:
            outcome.results.append(InviteResult(email, "already_member", member))
            continue
        if member is None:
            member = PortalUser(email=entry.email.strip(), name=entry.name, role=entry.role, invited_at=now)
            created.append(member)
        else:
            member.role, member.invited_at, member.updated_at = entry.role, now, now
            member.name = entry.name or member.name
            restored.append(member)
        if account_id is not None:
            member.status, member.global_user_id, member.joined_at = PortalUser.Status.ACTIVE, account_id, now
            outcome.results.append(InviteResult(email, "linked", member))
            mail.append(PortalEmail(kind="access_granted", to=member.email, name=member.name))
        else:
            member.status = PortalUser.Status.INVITED
            invitation, token = _new_invitation(portal_user=member, invited_by=inviter, now=now, message=message)
            invitations.append(invitation)
            outcome.results.append(InviteResult(email, "invited", member))
            mail.append(PortalEmail(kind="invitation", to=member.email, name=member.name, token=token, message=message))

    if write:
        PortalUser.objects.bulk_create(created)
        if restored:
            PortalUser.objects.bulk_update(
                restored, ["status", "role", "name", "global_user_id", "invited_at", "joined_at", "updated_at"]
            )
            # A restored member's old links must not work again.
            Invitation.objects.filter(portal_user__in=restored, status=Invitation.Status.PENDING).update(
                status=Invitation.Status.REVOKED
            )
        Invitation.objects.bulk_create(invitations)
    return outcome, mail


@transaction.atomic
def portal_user_remove(*, portal_user_id: uuid.UUID | str) -> None:
    """Delete a membership with its sessions and invitations; the global account stays."""
    try:
        member_id = uuid.UUID(str(portal_user_id))
    except ValueError as exc:
        raise NotFoundError() from exc
    deleted, _ = PortalUser.objects.filter(id=member_id).delete()
    if not deleted:
        raise NotFoundError()
