"""Writes inside one portal's schema. Callers select the schema (`tenant_context(portal)`)."""

import functools
import hmac
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, TypedDict, Unpack

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import User
from accounts.services import account_password_set, password_errors, user_create
from customer_portal.audit import (
    invitation_target,
    member_actor,
    member_target,
    portal_record,
    portal_record_many,
    session_target,
)
from customer_portal.emails import (
    DELIVERY_FIELDS,
    QueuedEmail,
    delivery_new,
    invitation_token,
    invitation_token_hash,
    portal_emails_queue,
    sign_in_email_kind,
    sign_in_secrets,
    sign_in_token,
)
from customer_portal.errors import CustomerPortalError
from customer_portal.features import FEATURE_CATALOG
from customer_portal.invite_rows import InviteEntry, email_domain_refusal
from customer_portal.models import Feature, Invitation, PortalSession, PortalSettings, PortalUser, SignInToken
from customer_portal.selectors import (
    live_sessions,
    portal_settings_get,
    portal_user_list_by_ids,
)
from events.context import Actor, audit_context_get
from events.services import Pending, Target, field_changes, record_many
from portals.caching import portal_config_forget_on_commit
from portals.models import Portal
from portalsite.db import model_attnames, schema_batches, tenant_connection
from portalsite.errors import ApplicationError, FieldError, NotFoundError, uuid_or_not_found, valid_uuids

logger = logging.getLogger(__name__)

InviteStatus = Literal["invited", "linked", "already_member"]


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


def _new_invitation(
    *, portal_user: PortalUser, invited_by: str, now: datetime, message: str = "", send_email: bool
) -> tuple[Invitation, QueuedEmail | None]:
    """An unsaved invitation with its link and, with `send_email`, its e-mail to queue."""
    invitation = Invitation(portal_user=portal_user, invited_by=invited_by, message=message)
    return invitation, _invitation_link_new(invitation, now=now, send_email=send_email)


def _invitation_link_new(invitation: Invitation, *, now: datetime, send_email: bool) -> QueuedEmail | None:
    """A new secret link and expiry for `invitation` (unsaved): the old link stops working. The token is never
    stored, only its hash: the e-mail job rebuilds it from the new delivery key (customer_portal.emails)."""
    queued = delivery_new(invitation, kind="invitation", send=send_email)
    token = invitation_token(invitation_id=invitation.id, delivery_key=invitation.delivery_key)
    invitation.token_hash = invitation_token_hash(token)
    invitation.status = Invitation.Status.PENDING
    invitation.created_at, invitation.expires_at = now, now + settings.PORTAL_INVITATION_TTL
    return queued


def portal_settings_initialize(*, portal: Portal) -> None:
    """Give a new portal's settings row its display name (the row itself comes from migration 0002).
    Runs in the new schema, inside portal_create's transaction (customer_portal.apps connects it)."""
    PortalSettings.objects.filter(id=1).update(display_name=portal.name, updated_at=timezone.now())


def _email_domain_errors(entries: Sequence[InviteEntry], allowed: Sequence[str]) -> list[FieldError]:
    errors = []
    for index, entry in enumerate(entries):
        refusal = email_domain_refusal(entry.email, allowed)
        if refusal is not None:
            errors.append(FieldError(("users", index, "email"), f"{refusal[0].upper()}{refusal[1:]}."))
    return errors


def portal_users_invite(
    *,
    portal: Portal,
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
    nothing. With `send_email`, each invitee and each linked account gets an e-mail: one job each,
    queued in this transaction (one statement for all), delivered by a worker.

    Lock contract: invites to one portal are serialized (a transaction-level advisory lock), so
    concurrent invites of the same e-mail end as one membership.
    """
    if dry_run:
        outcome, _ = _invite(
            portal=portal, entries=entries, invited_by=invited_by, message=message, write=False, send_email=False
        )
        # A dry run says which e-mails already have an account anywhere on the platform (they would be
        # `linked`): it is throttled like an invite, and recorded so that probing is visible. Ids and
        # counts only, never the addresses.
        logger.info(
            "dry-run invite to portal %s (%s) by account %s: %d e-mails, %d would be linked, %d invited, %d members",
            portal.slug, portal.id, invited_by.pk if invited_by else "operator", len(outcome.results),
            outcome.count("linked"), outcome.count("invited"), outcome.count("already_member"),
        )  # fmt: skip
        return outcome
    with transaction.atomic():
        outcome, emails = _invite(
            portal=portal, entries=entries, invited_by=invited_by, message=message, write=True, send_email=send_email
        )
        portal_emails_queue(portal=portal, emails=emails)
    return outcome


def _invite(
    *,
    portal: Portal,
    entries: Sequence[InviteEntry],
    invited_by: User | None,
    message: str,
    write: bool,
    send_email: bool,
) -> tuple[InviteOutcome, list[QueuedEmail]]:
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
    for found in PortalUser.objects.annotate(email_lower=Lower("email")).filter(
        Q(email_lower__in=emails) | Q(global_user_id__in=accounts.values())
    ):
        members[found.email_lower] = found
        members.setdefault(f"id:{found.global_user_id}", found)

    now = timezone.now()
    inviter = invited_by.email if invited_by else ""
    outcome = InviteOutcome()
    created: list[PortalUser] = []
    restored: list[PortalUser] = []
    invitations: list[Invitation] = []
    mail: list[QueuedEmail | None] = []
    events: list[Pending] = []
    for email, entry in unique.items():
        account_id = accounts.get(email)
        member = members.get(email) or (members.get(f"id:{account_id}") if account_id else None)
        if member is not None and member.status != PortalUser.Status.REVOKED:
            outcome.results.append(InviteResult(email, "already_member", member))
            continue
        restoring = member is not None
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
            mail.append(delivery_new(member, kind="access_granted", send=send_email))
        else:
            member.status = PortalUser.Status.INVITED
            invitation, queued = _new_invitation(
                portal_user=member, invited_by=inviter, now=now, message=message, send_email=send_email
            )
            invitations.append(invitation)
            outcome.results.append(InviteResult(email, "invited", member))
            mail.append(queued)
        # One event per person: restored (a revoked member back), else linked or invited.
        action = "portal_user.restored" if restoring else f"portal_user.{outcome.results[-1].status}"
        changes = {"status": [PortalUser.Status.REVOKED, member.status]} if restoring else {"role": [None, member.role]}
        events.append(Pending(action=action, target=member_target(member), changes=changes))

    if write:
        PortalUser.objects.bulk_create(created)
        if restored:
            PortalUser.objects.bulk_update(
                restored,
                ["status", "role", "name", "global_user_id", "invited_at", "joined_at", "updated_at", *DELIVERY_FIELDS],
            )
            # A restored member's old links must not work again.
            Invitation.objects.filter(portal_user__in=restored, status=Invitation.Status.PENDING).update(
                status=Invitation.Status.REVOKED
            )
        Invitation.objects.bulk_create(invitations)
        portal_record_many(events)
    return outcome, [queued for queued in mail if queued is not None]


@transaction.atomic
def portal_users_remove(*, ids: Iterable[uuid.UUID | str]) -> list[PortalUser]:
    """Delete these memberships with their sessions and invitations (the global accounts stay), in one
    transaction; unknown and malformed ids are skipped. Returns the members removed."""
    members = list(PortalUser.objects.select_for_update().filter(id__in=valid_uuids(ids)).order_by("pk"))
    PortalUser.objects.filter(id__in=[member.id for member in members]).delete()
    portal_record_many([Pending(action="portal_user.removed", target=member_target(member)) for member in members])
    return members


def portal_user_remove(*, portal_user_id: uuid.UUID | str) -> None:
    """Delete one membership with its sessions and invitations; NotFoundError when there is none."""
    if not portal_users_remove(ids=[uuid_or_not_found(portal_user_id)]):
        raise NotFoundError()


@transaction.atomic
def portal_users_revoke(*, ids: Iterable[uuid.UUID | str]) -> list[PortalUser]:
    """Revoke access, in one transaction: status `revoked`, every session ended, pending invitations revoked.
    Unknown and malformed ids are skipped; returns the members revoked.

    Their tokens are refused on their next request (each request checks its session).
    A later invite (or `portal_users_restore`) restores a member.
    """
    members = list(PortalUser.objects.select_for_update().filter(id__in=valid_uuids(ids)).order_by("pk"))
    now = timezone.now()
    events = [
        Pending(
            action="portal_user.access_revoked",
            target=member_target(member),
            changes={"status": [member.status, PortalUser.Status.REVOKED]},
        )
        for member in members
        if member.status != PortalUser.Status.REVOKED  # revoking again changes nothing: no event
    ]
    for member in members:
        member.status, member.updated_at = PortalUser.Status.REVOKED, now
    PortalUser.objects.bulk_update(members, ["status", "updated_at"])
    PortalSession.objects.filter(portal_user__in=members, ended_at__isnull=True).update(ended_at=now)
    Invitation.objects.filter(portal_user__in=members, status=Invitation.Status.PENDING, expires_at__gt=now).update(
        status=Invitation.Status.REVOKED
    )
    portal_record_many(events)
    return members


def portal_user_revoke(*, portal_user_id: uuid.UUID | str) -> PortalUser:
    """Revoke one member's access (see `portal_users_revoke`); NotFoundError when there is none."""
    members = portal_users_revoke(ids=[uuid_or_not_found(portal_user_id)])
    if not members:
        raise NotFoundError()
    return members[0]


def portal_users_restore(*, portal: Portal, ids: Iterable[uuid.UUID | str], invited_by: User | None) -> InviteOutcome:
    """Give these members access again, as inviting them again does: an account holder is active at once, anyone
    else gets a new invitation. Unknown and malformed ids are skipped (the outcome has a result per member found)."""
    members = portal_user_list_by_ids(ids=ids)
    entries = [InviteEntry(email=member.email, name=member.name, role=member.role) for member in members]
    return portal_users_invite(portal=portal, entries=entries, invited_by=invited_by) if entries else InviteOutcome()


# Invitations -----------------------------------------------------------------------


@transaction.atomic
def invitation_create(
    *,
    portal: Portal,
    email: str,
    name: str = "",
    role: str = PortalUser.Role.MEMBER,
    message: str = "",
    invited_by: User | None,
) -> Invitation:
    """Invite one person by e-mail (no auto-linking: an account holder accepts with their password).

    A pending invitee gets a fresh invitation (the old link dies); a revoked member is invited again;
    an active member is a 422.
    """
    portal_settings = portal_settings_get()
    entry = InviteEntry(email=email, name=name, role=role)
    if portal_settings.allowed_email_domains:
        errors = _email_domain_errors([entry], portal_settings.allowed_email_domains)
        if errors:
            raise CustomerPortalError(errors[0].msg, loc=("email",))
    now = timezone.now()
    member: PortalUser | None = (
        PortalUser.objects.select_for_update()
        .alias(email_lower=Lower("email"))
        .filter(email_lower=email.strip().lower())
        .first()
    )
    if member is not None and member.status == PortalUser.Status.ACTIVE:
        raise CustomerPortalError("This person is already a member of the portal.", loc=("email",), code="unique")
    superseded: list[uuid.UUID] = []
    if member is None:
        member = PortalUser.objects.create(email=email.strip(), name=name, role=role, invited_at=now)
    else:
        member.status, member.role, member.invited_at = PortalUser.Status.INVITED, role, now
        member.name = name or member.name
        member.save(update_fields=["status", "role", "name", "invited_at", "updated_at"])
        superseded = list(member.invitations.filter(status=Invitation.Status.PENDING).values_list("id", flat=True))
        Invitation.objects.filter(id__in=superseded).update(status=Invitation.Status.REVOKED)
    inviter = invited_by.email if invited_by else ""
    invitation, queued = _new_invitation(
        portal_user=member, invited_by=inviter, now=now, message=message, send_email=True
    )
    invitation.save()
    # The earlier link dies with its own event; then the new invitation's.
    portal_record_many(
        [Pending("invitation.revoked", Target("invitation", str(old), member.email)) for old in superseded]
        + [Pending("invitation.created", invitation_target(invitation), {"role": [None, member.role]})]
    )
    portal_emails_queue(portal=portal, emails=[queued] if queued else [])
    return invitation


@dataclass
class InvitationsOutcome:
    """What a batch of invitation changes did: the invitations changed, and why the others were not."""

    done: list[Invitation] = field(default_factory=list)
    refused: list[ApplicationError] = field(default_factory=list)  # NotFoundError for an unknown id


@transaction.atomic
def invitations_resend(*, portal: Portal, ids: Iterable[uuid.UUID | str]) -> InvitationsOutcome:
    """A new token and expiry for each pending or expired invitation among `ids` (the old links stop working),
    and a new e-mail each (queued in this transaction: a job still trying the old one sends nothing); the
    others are refused with the reason."""
    emails: list[QueuedEmail] = []
    outcome = _invitations_change(
        ids=ids, change=lambda invitation: emails.append(_invitation_resend(invitation)), action="invitation.resent"
    )
    portal_emails_queue(portal=portal, emails=emails)
    return outcome


@transaction.atomic
def invitations_revoke(*, ids: Iterable[uuid.UUID | str]) -> InvitationsOutcome:
    """Revoke each invitation among `ids` that is not accepted (an invitee who never joined is revoked with
    it), in one transaction; the others are refused with the reason."""
    return _invitations_change(ids=ids, change=_invitation_revoke, action="invitation.revoked")


def invitation_resend(*, portal: Portal, invitation_id: uuid.UUID | str) -> Invitation:
    """Resend one invitation (see `invitations_resend`): NotFoundError, or 409 in the wrong status."""
    return _only(invitations_resend(portal=portal, ids=[uuid_or_not_found(invitation_id)]))


def invitation_revoke(*, invitation_id: uuid.UUID | str) -> Invitation:
    """Revoke one invitation (see `invitations_revoke`): NotFoundError, or 409 when it was accepted."""
    return _only(invitations_revoke(ids=[uuid_or_not_found(invitation_id)]))


def _invitations_change(
    *, ids: Iterable[uuid.UUID | str], change: Callable[[Invitation], None], action: str
) -> InvitationsOutcome:
    """Apply `change` to each invitation among `ids`, recording `action` for each one changed."""
    outcome = InvitationsOutcome()
    wanted = list(dict.fromkeys(valid_uuids(ids)))
    invitations = {
        invitation.id: invitation
        for invitation in Invitation.objects.select_for_update().select_related("portal_user").filter(id__in=wanted)
    }
    for invitation_id in wanted:
        invitation = invitations.get(invitation_id)
        if invitation is None:
            outcome.refused.append(NotFoundError())
            continue
        try:
            change(invitation)  # refuses before it writes anything
        except CustomerPortalError as exc:
            outcome.refused.append(exc)
        else:
            outcome.done.append(invitation)
    portal_record_many([Pending(action=action, target=invitation_target(invitation)) for invitation in outcome.done])
    return outcome


def _only(outcome: InvitationsOutcome) -> Invitation:
    """The one invitation a single-id change made, or its refusal raised."""
    if outcome.refused:
        raise outcome.refused[0]
    return outcome.done[0]


def _invitation_resend(invitation: Invitation) -> QueuedEmail:
    if invitation.status not in (Invitation.Status.PENDING, Invitation.Status.EXPIRED):
        raise CustomerPortalError(f"A {invitation.status} invitation cannot be resent.", status=409)
    queued = _invitation_link_new(invitation, now=timezone.now(), send_email=True)
    assert queued is not None
    invitation.save(update_fields=["token_hash", "status", "created_at", "expires_at", *DELIVERY_FIELDS])
    return queued


def _invitation_revoke(invitation: Invitation) -> None:
    if invitation.status == Invitation.Status.ACCEPTED:
        raise CustomerPortalError("An accepted invitation cannot be revoked; revoke the user's access.", status=409)
    invitation.status = Invitation.Status.REVOKED
    invitation.save(update_fields=["status"])
    member = invitation.portal_user
    if member.status == PortalUser.Status.INVITED:
        member.status = PortalUser.Status.REVOKED
        member.save(update_fields=["status", "updated_at"])


INVALID_INVITATION = "This invitation link is not valid: it may have been used, revoked or expired."


def invitation_get_by_token(*, token: str) -> Invitation:
    """The pending, unexpired invitation behind `token`; NotFoundError for anything else, all alike."""
    token_hash = invitation_token_hash(token)
    invitation = Invitation.objects.select_related("portal_user").filter(token_hash=token_hash).first()
    if (
        invitation is None
        or not hmac.compare_digest(invitation.token_hash, token_hash)
        or invitation.effective_status != Invitation.Status.PENDING
    ):
        raise NotFoundError(INVALID_INVITATION)
    return invitation


@transaction.atomic
def invitation_accept(
    *, portal: Portal, token: str, password: str, name: str = "", ip_address: str | None, user_agent: str
) -> tuple[User, PortalSession]:
    """Accept an invitation: create the account (or check the existing one's password), activate the
    membership and open a portal session. Single use: the invitation row is locked and consumed."""
    invitation = invitation_get_by_token(token=token)
    invitation = Invitation.objects.select_for_update().select_related("portal_user").get(pk=invitation.pk)
    if invitation.effective_status != Invitation.Status.PENDING:  # lost a race with another accept
        raise NotFoundError(INVALID_INVITATION)
    member = invitation.portal_user
    account = User.objects.filter(email__iexact=member.email).first()
    if account is not None:
        if not account.check_password(password) or not account.is_active:
            raise CustomerPortalError(
                "Incorrect password for the existing account with this e-mail.", loc=("password",)
            )
    else:
        errors = password_errors(password=password, user=User(email=member.email, name=name))
        if errors:
            raise CustomerPortalError(" ".join(error.msg for error in errors), field_errors=errors)
        account = user_create(email=member.email, password=password, name=name or member.name)
    now = timezone.now()
    member.status, member.global_user_id, member.joined_at = PortalUser.Status.ACTIVE, account.id, now
    member.name = name or member.name or account.name
    member.save(update_fields=["status", "global_user_id", "joined_at", "name", "updated_at"])
    invitation.status, invitation.accepted_at = Invitation.Status.ACCEPTED, now
    invitation.save(update_fields=["status", "accepted_at"])
    session = _session_open(member=member, ip_address=ip_address, user_agent=user_agent)
    portal_record("invitation.accepted", invitation_target(invitation), actor=member_actor(member))
    return account, session


# Sessions ------------------------------------------------------------------------------

# last_seen_at (and the sliding expiry) is written at most this often, so requests stay read-only.
SESSION_TOUCH_INTERVAL = timedelta(minutes=1)


def _session_open(*, member: PortalUser, ip_address: str | None, user_agent: str) -> PortalSession:
    timeout = timedelta(minutes=portal_settings_get().session_timeout_minutes)
    now = timezone.now()
    member.last_login_at = now
    member.save(update_fields=["last_login_at", "updated_at"])
    session = PortalSession.objects.create(
        portal_user=member,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timeout,
        ip_address=ip_address,
        user_agent=user_agent[:512],
    )
    portal_record("session.created", session_target(session, member), actor=member_actor(member))
    return session


class PortalLoginRefused(ApplicationError):
    """No active membership: refused exactly like a wrong password (nothing is revealed)."""

    def __init__(self) -> None:
        super().__init__("No active account found with the given credentials", status=401)


@transaction.atomic
def portal_session_open(*, user: User, ip_address: str | None, user_agent: str) -> PortalSession:
    """Log `user` in to the current portal: needs an active membership."""
    member = PortalUser.objects.filter(global_user_id=user.id, status=PortalUser.Status.ACTIVE).first()
    if member is None:
        raise PortalLoginRefused()
    return _session_open(member=member, ip_address=ip_address, user_agent=user_agent)


@functools.cache
def _live_session_sql() -> str:
    """The session check of every portal-scoped request, written once (building and compiling it through the
    ORM cost more than the rest of such a request) and prepared once per connection. One lookup by primary
    key; `accounts_user` is in public, on every portal's search_path."""
    session, member, account = PortalSession._meta, PortalUser._meta, User._meta
    columns = [f's."{f.column}"' for f in session.concrete_fields] + [f'm."{f.column}"' for f in member.concrete_fields]
    # Identifiers from the models' metadata; every value is a parameter.
    return (
        f'SELECT {", ".join(columns)} FROM "{session.db_table}" s'  # noqa: S608
        f' JOIN "{member.db_table}" m ON m."id" = s."portal_user_id"'
        f' JOIN "{account.db_table}" a ON a."id" = m."global_user_id"'
        ' WHERE s."id" = %s AND s."ended_at" IS NULL AND s."expires_at" > %s'
        ' AND m."global_user_id" = %s AND m."status" = %s AND a."is_active"'
    )


def portal_session_touch(*, session_id: str | None, global_user_id: uuid.UUID | str) -> PortalSession | None:
    """The live session of an active member whose account is active (its `portal_user` loaded), or None.
    One query (it stands in for the account lookup too); a write at most once a minute, which also slides
    the idle expiry."""
    try:
        sid, account_id = uuid.UUID(str(session_id)), uuid.UUID(str(global_user_id))
    except ValueError:
        return None
    now = timezone.now()
    with tenant_connection.prepared_cursor() as cursor:
        cursor.execute(_live_session_sql(), [sid, now, account_id, PortalUser.Status.ACTIVE])
        row = cursor.fetchone()
    if row is None:
        return None
    session_fields, member_fields = model_attnames(PortalSession), model_attnames(PortalUser)
    session = PortalSession.from_db(connection.alias, session_fields, row[: len(session_fields)])
    session.portal_user = PortalUser.from_db(connection.alias, member_fields, row[len(session_fields) :])
    if now - session.last_seen_at >= SESSION_TOUCH_INTERVAL:
        timeout = session.expires_at - session.last_seen_at  # the timeout in force when it was set
        session.last_seen_at, session.expires_at = now, now + timeout
        PortalSession.objects.filter(id=session.id).update(last_seen_at=now, expires_at=session.expires_at)
    return session


@transaction.atomic
def portal_session_end(
    *, session_id: uuid.UUID | str, portal_user: PortalUser | None = None, by_its_user: bool = False
) -> PortalSession:
    """End one live session (logout, or an admin ending it) and return it with its `portal_user`;
    NotFoundError when it is not live, or (with `portal_user`) not that member's. The actor is the session's own
    user for a logout (`by_its_user`: the request proves it with the session's refresh token, not by signing in)
    and for a member ending one of their own sessions (`portal_user`)."""
    sessions = live_sessions().select_for_update().select_related("portal_user")
    if portal_user is not None:
        sessions = sessions.filter(portal_user=portal_user)
    session = sessions.filter(id=uuid_or_not_found(session_id)).first()
    if session is None:
        raise NotFoundError()
    session.ended_at = timezone.now()
    session.save(update_fields=["ended_at"])
    actor = member_actor(session.portal_user) if by_its_user or portal_user is not None else None
    portal_record("session.ended", session_target(session, session.portal_user), actor=actor)
    return session


# Signing in without a password, resetting it, and a member's own account -----------------------------

INVALID_LINK = "This link is not valid: it may have been used, replaced by a newer one, or expired."
SIGN_IN_REFUSED = "That did not work: the code may be wrong, used or expired. Ask for a new one."
MAX_TOKEN_LENGTH = 200  # our tokens are 43 characters: anything much longer names nothing


class SignInRefused(ApplicationError):
    """A link or code that signs no one in: one answer for every reason (wrong, used, expired, unknown address)."""

    def __init__(self, message: str = SIGN_IN_REFUSED) -> None:
        super().__init__(message, status=401)


def _member_with_account(*, email: str) -> PortalUser | None:
    """The active member of this portal with that e-mail whose account is active, else None (nothing said why)."""
    return (
        PortalUser.objects.alias(email_lower=Lower("email"))
        .filter(
            email_lower=email.strip().lower(),
            status=PortalUser.Status.ACTIVE,
            global_user_id__in=User.objects.filter(is_active=True).values("id"),
        )
        .first()
    )


def _sign_in_token_new(
    *, member: PortalUser, purpose: str, host: str, now: datetime
) -> tuple[SignInToken, QueuedEmail]:
    link_ttl = (
        settings.PASSWORD_RESET_TTL
        if purpose == SignInToken.Purpose.PASSWORD_RESET
        else settings.EMAIL_SIGN_IN_LINK_TTL
    )
    row = SignInToken(portal_user=member, purpose=purpose, host=host[:253], created_at=now, expires_at=now + link_ttl)
    if purpose == SignInToken.Purpose.EMAIL_SIGN_IN:
        row.code_expires_at = now + settings.EMAIL_SIGN_IN_CODE_TTL
    queued = delivery_new(row, kind=sign_in_email_kind(row), send=True)
    assert queued is not None
    row.token_hash = invitation_token_hash(sign_in_token(token_id=row.id, delivery_key=row.delivery_key))
    return row, queued


@transaction.atomic
def sign_in_token_request(*, portal: Portal, email: str, purpose: str, host: str = "") -> None:
    """E-mail a password-reset link, or a sign-in link and code, to `email` when it is an active member of this
    portal with an active account; otherwise do nothing, so that the caller learns nothing. The member's
    earlier live links of that purpose die. `host`: the portal host asked on, which the e-mail links back to."""
    member = _member_with_account(email=email)
    if member is None:
        return
    now = timezone.now()
    SignInToken.objects.filter(portal_user=member, purpose=purpose, used_at__isnull=True).update(used_at=now)
    row, queued = _sign_in_token_new(member=member, purpose=purpose, host=host, now=now)
    row.save()
    portal_emails_queue(portal=portal, emails=[queued])


def sign_in_token_get(*, token: str, purpose: str, lock: bool = False) -> SignInToken:
    """The live link behind `token` (its `portal_user` loaded), of an active member; NotFoundError(INVALID_LINK)
    for anything else, all alike. Reading it uses nothing up (a mail scanner following the link)."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise NotFoundError(INVALID_LINK)
    token_hash = invitation_token_hash(token)
    rows = SignInToken.objects.select_related("portal_user").filter(token_hash=token_hash, purpose=purpose)
    row = (rows.select_for_update(of=("self",)) if lock else rows).first()
    if (
        row is None
        or not hmac.compare_digest(row.token_hash, token_hash)
        or not row.link_live(timezone.now())
        or row.portal_user.status != PortalUser.Status.ACTIVE
    ):
        raise NotFoundError(INVALID_LINK)
    return row


def _account_of(member: PortalUser) -> User | None:
    if member.global_user_id is None:
        return None
    return User.objects.filter(id=member.global_user_id, is_active=True).first()


@transaction.atomic
def password_reset(*, token: str, password: str) -> User:
    """Set a new password with a reset link: Django's validators decide (422 at `password`, and the link still
    works); on success the link is used up and every session and refresh token of the account ends."""
    row = sign_in_token_get(token=token, purpose=SignInToken.Purpose.PASSWORD_RESET, lock=True)
    account = _account_of(row.portal_user)
    if account is None:
        raise NotFoundError(INVALID_LINK)
    account_password_set(user=account, password=password)
    row.used_at = timezone.now()
    row.save(update_fields=["used_at"])
    return account


def _sign_in(*, member: PortalUser, ip_address: str | None, user_agent: str) -> tuple[User, PortalSession]:
    account = _account_of(member)
    if account is None:
        raise SignInRefused()
    return account, _session_open(member=member, ip_address=ip_address, user_agent=user_agent)


def email_sign_in_by_link(*, token: str, ip_address: str | None, user_agent: str) -> tuple[User, PortalSession]:
    """Sign in with an e-mailed link: a portal session, as a password login opens; the link (and its code) are
    used up. SignInRefused (401) for any link that is not live."""
    try:
        with transaction.atomic():
            row = sign_in_token_get(token=token, purpose=SignInToken.Purpose.EMAIL_SIGN_IN, lock=True)
            row.used_at = timezone.now()
            row.save(update_fields=["used_at"])
            return _sign_in(member=row.portal_user, ip_address=ip_address, user_agent=user_agent)
    except NotFoundError:
        raise SignInRefused() from None


def email_sign_in_by_code(
    *, email: str, code: str, ip_address: str | None, user_agent: str
) -> tuple[User, PortalSession]:
    """Sign in with the 6-digit code of the member's latest sign-in e-mail. A wrong code counts against it: after
    EMAIL_SIGN_IN_CODE_TRIES wrong ones it is void (its link too). SignInRefused (401) for every failure,
    an unknown address included.

    Lock contract: the token row is locked while its tries are counted, so concurrent guesses count each."""
    with transaction.atomic():
        member = _member_with_account(email=email)
        now = timezone.now()
        row = (
            SignInToken.objects.select_for_update()
            .filter(portal_user=member, purpose=SignInToken.Purpose.EMAIL_SIGN_IN, used_at__isnull=True)
            .filter(code_expires_at__gt=now)
            .first()
            if member is not None
            else None
        )
        if row is not None:
            rebuilt = sign_in_secrets(row)  # the code the e-mail carried: under the key its link was made with
            if rebuilt is not None and hmac.compare_digest(rebuilt[1].encode(), code.strip().encode()):
                row.used_at = now
                row.save(update_fields=["used_at"])
                assert member is not None
                return _sign_in(member=member, ip_address=ip_address, user_agent=user_agent)
            row.code_attempts += 1
            if row.code_attempts >= settings.EMAIL_SIGN_IN_CODE_TRIES:
                row.used_at = now
            row.save(update_fields=["code_attempts", "used_at"])
    raise SignInRefused()  # after the commit: the wrong try stays counted


@transaction.atomic
def portal_user_name_update(*, member: PortalUser, name: str) -> PortalUser:
    """A member renames themselves: in this portal, and on their account (a `portal_user.updated` event)."""
    changes = field_changes({"name": member.name}, {"name": name.strip()})
    if not changes:
        return member
    member.name = name.strip()
    member.save(update_fields=["name", "updated_at"])
    if member.global_user_id is not None:
        User.objects.filter(id=member.global_user_id).update(name=member.name)
    portal_record("portal_user.updated", member_target(member), changes)
    return member


@transaction.atomic
def portal_password_change(
    *, member: PortalUser, current_password: str, password: str, ip_address: str | None, user_agent: str
) -> PortalSession:
    """A member changes their password, knowing the current one (CustomerPortalError at `current_password`).
    Every session and refresh token of the account ends; the caller gets a new session here in their place."""
    account = _account_of(member)
    if account is None or not account.check_password(current_password):
        raise CustomerPortalError("This is not your current password.", loc=("current_password",))
    account_password_set(user=account, password=password)
    return _session_open(member=member, ip_address=ip_address, user_agent=user_agent)


@transaction.atomic
def portal_user_sessions_end_others(*, member: PortalUser, keep_session_id: uuid.UUID) -> int:
    """End every live session of the member in this portal except `keep_session_id` (a `session.ended` event
    each); returns how many ended."""
    ended = list(live_sessions().filter(portal_user=member).exclude(id=keep_session_id).select_for_update())
    PortalSession.objects.filter(id__in=[session.id for session in ended]).update(ended_at=timezone.now())
    portal_record_many([Pending(action="session.ended", target=session_target(session, member)) for session in ended])
    return len(ended)


# Configuration and features -----------------------------------------------------------------


class PortalConfigChanges(TypedDict, total=False):
    """The settings `PATCH /config` may change (already validated by the caller's input serializer)."""

    display_name: str
    logo_url: str
    primary_color: str
    welcome_message: str
    support_email: str
    allowed_email_domains: list[str]
    session_timeout_minutes: int


@transaction.atomic
def portal_config_update(**changes: Unpack[PortalConfigChanges]) -> PortalSettings:
    """Change some settings; the model's own validation has the last word (a 422 on the field it refuses)."""
    portal_settings = PortalSettings.objects.select_for_update().get(id=1)
    before = {field_name: getattr(portal_settings, field_name) for field_name in changes}
    for field_name, value in changes.items():
        setattr(portal_settings, field_name, value)
    try:
        portal_settings.full_clean()
    except DjangoValidationError as exc:
        raise CustomerPortalError(
            "Invalid settings.",
            field_errors=[
                FieldError((name,), message) for name, messages in exc.message_dict.items() for message in messages
            ],
        ) from exc
    portal_settings.save()
    changed = field_changes(before, {field_name: getattr(portal_settings, field_name) for field_name in changes})
    if changed:  # no change, no event
        portal_record("portal.config.updated", Target(type="portal_config", id="1", label="settings"), changed)
    portal_config_forget_on_commit()
    return portal_settings


@transaction.atomic
def feature_toggle(*, key: str, enabled: bool | None = None) -> Feature:
    """Set a feature on or off; without `enabled`, flip it."""
    if key not in FEATURE_CATALOG:  # before the query: a key PostgreSQL cannot even store (NUL) names nothing
        raise NotFoundError()
    feature = Feature.objects.select_for_update().filter(key=key).first()
    if feature is None:
        raise NotFoundError()
    before = feature.enabled
    feature.enabled = (not feature.enabled) if enabled is None else enabled
    feature.save(update_fields=["enabled", "updated_at"])
    if feature.enabled != before:  # setting the state it had changes nothing: no event
        portal_record(
            "portal.feature.toggled",
            Target(type="feature", id=feature.key, label=feature.name),
            {"enabled": [before, feature.enabled]},
        )
    portal_config_forget_on_commit()
    return feature


# Housekeeping -----------------------------------------------------------------------------------


# Used or expired sign-in and reset links are kept this long (what an e-mail came to), then deleted.
SIGN_IN_TOKENS_KEPT = timedelta(days=1)


@transaction.atomic
def portal_housekeeping() -> tuple[int, int]:
    """Store `expired` on invitations past their expiry, end sessions past theirs, and delete sign-in and reset
    links dead for more than SIGN_IN_TOKENS_KEPT. Returns (invitations expired, sessions ended)."""
    now = timezone.now()
    dead = now - SIGN_IN_TOKENS_KEPT
    SignInToken.objects.filter(Q(used_at__lt=dead) | Q(expires_at__lt=dead)).delete()
    invitations = list(
        Invitation.objects.select_for_update(of=("self",))
        .select_related("portal_user")
        .filter(status=Invitation.Status.PENDING, expires_at__lte=now)
    )
    Invitation.objects.filter(id__in=[invitation.id for invitation in invitations]).update(
        status=Invitation.Status.EXPIRED
    )
    sessions = list(
        PortalSession.objects.select_for_update(of=("self",))
        .select_related("portal_user")
        .filter(ended_at__isnull=True, expires_at__lte=now)
    )
    # ended_at is when the session really ended (its expiry), not when this cleanup ran.
    PortalSession.objects.filter(id__in=[session.id for session in sessions]).update(ended_at=F("expires_at"))
    portal_record_many(
        [Pending(action="invitation.expired", target=invitation_target(invitation)) for invitation in invitations]
        + [Pending(action="session.ended", target=session_target(session, session.portal_user)) for session in sessions]
    )
    return len(invitations), len(sessions)


@dataclass
class HousekeepingSummary:
    portals: int = 0
    invitations_expired: int = 0
    sessions_ended: int = 0
    failed: list[str] = field(default_factory=list)  # slugs of the portals that could not be cleaned


def portal_housekeeping_each(*, portals: Iterable["Portal"]) -> HousekeepingSummary:
    """`portal_housekeeping` in each portal, one transaction each. A portal that fails (say, its schema
    is gone) is logged and listed, and the others are still cleaned."""
    summary = HousekeepingSummary()
    for portal in portals:
        summary.portals += 1
        try:
            with tenant_context(portal):
                expired, ended = portal_housekeeping()
        except Exception:
            logger.exception("housekeeping of portal %s (%s) failed", portal.slug, portal.id)
            summary.failed.append(portal.slug)
            continue
        summary.invitations_expired += expired
        summary.sessions_ended += ended
    return summary


def account_portal_sessions_end(*, user_id: uuid.UUID | str) -> int:
    """End every live portal session of the account, in every portal: one statement per 200 portal schemas
    (data-modifying CTEs), and a `session.ended` event for each session in its portal's trail. Returns how
    many sessions ended."""
    account_id = uuid.UUID(str(user_id))
    quote = connection.ops.quote_name
    sessions, members = quote(PortalSession._meta.db_table), quote(PortalUser._meta.db_table)
    portals = {
        schema: (portal_id, organization_id)
        for schema, portal_id, organization_id in Portal.objects.filter(
            is_spare=False, organization__isnull=False
        ).values_list("schema_name", "id", "organization_id")
    }
    schemas = list(portals)
    ended: dict[str, list[uuid.UUID]] = {}
    for batch in schema_batches(schemas):
        updates = [
            f"u{index} AS (UPDATE {quote(schema)}.{sessions} SET ended_at = now() WHERE ended_at IS NULL "  # noqa: S608
            f"AND portal_user_id IN (SELECT id FROM {quote(schema)}.{members} WHERE global_user_id = %s) "
            "RETURNING id)"
            for index, schema in enumerate(batch)
        ]
        rows = " UNION ALL ".join(f"SELECT {index}, id FROM u{index}" for index in range(len(batch)))  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(f"WITH {', '.join(updates)} {rows}", [account_id] * len(batch))
            for index, session_id in cursor.fetchall():
                ended.setdefault(batch[index], []).append(session_id)
    email = (User.objects.filter(id=account_id).values_list("email", flat=True).first() or "") if ended else ""
    # Signed in, the caller is the actor (an admin changing the password); else it is a logout everywhere,
    # which only the holder of one of the account's refresh tokens can ask for: the account itself.
    actor = None if audit_context_get().current_actor().id else Actor(type="user", id=str(account_id), email=email)
    for schema, session_ids in ended.items():
        portal_id, organization_id = portals[schema]
        assert organization_id is not None
        record_many(
            organization_id=organization_id,
            portal_id=portal_id,
            events=[
                Pending(action="session.ended", target=Target(type="session", id=str(sid), label=email))
                for sid in session_ids
            ],
            actor=actor,
        )
    return sum(len(session_ids) for session_ids in ended.values())
