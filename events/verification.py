"""Checking an organization's hash chain, and pruning its oldest events without breaking it."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from events.chain import event_hash
from events.models import AuditChain, AuditEvent

VERIFY_CHUNK = 2000  # rows per round trip: memory stays flat however long the chain


@dataclass(frozen=True)
class ChainBreak:
    """The first event where the chain does not hold (None: the newest were removed after `after_seq`)."""

    reason: str
    event: AuditEvent | None
    after_seq: int


@dataclass(frozen=True)
class ChainReport:
    organization_id: uuid.UUID
    verified: int
    broken: ChainBreak | None


def audit_chain_verify(*, organization_id: uuid.UUID) -> ChainReport:
    """Walk the organization's events by `seq` and check each one: it comes next (none removed before it),
    it names the hash of the one before (none reordered or removed), and its own hash is its content's (not
    altered); and the last one is the chain head's (none removed at the end). After pruning, the oldest kept
    event must follow the last one pruned (the head keeps its number and hash)."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost:  # one snapshot for the head and the walk: events recorded or pruned meanwhile are not "missing"
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        return _chain_verify(organization_id=organization_id)


def _chain_verify(*, organization_id: uuid.UUID) -> ChainReport:
    head = AuditChain.objects.filter(organization_id=organization_id).first()
    expected_seq = (head.pruned_seq if head else 0) + 1
    expected_prev = head.pruned_hash if head else ""
    verified = 0
    events = AuditEvent.objects.filter(organization_id=organization_id).order_by("seq")
    for event in events.iterator(chunk_size=VERIFY_CHUNK):
        reason = None
        if event.seq != expected_seq:
            reason = f"events {expected_seq}..{event.seq - 1} are missing before it"
        elif event.prev_hash != expected_prev:
            reason = "it does not follow the event before it (reordered, or that one replaced)"
        elif event_hash(event) != event.hash:
            reason = "its content does not match its hash (altered)"
        if reason is not None:
            return ChainReport(organization_id, verified, ChainBreak(reason, event, expected_seq - 1))
        verified += 1
        expected_seq, expected_prev = event.seq + 1, event.hash
    last_seq = expected_seq - 1
    if head is not None and (head.seq, head.hash) != (last_seq, expected_prev):
        reason = f"the newest events ({last_seq + 1}..{head.seq}) are missing"
        return ChainReport(organization_id, verified, ChainBreak(reason, None, last_seq))
    return ChainReport(organization_id, verified, None)


def audit_chain_organization_ids() -> list[uuid.UUID]:
    """Every organization that has a chain (events outlive organizations too)."""
    return list(AuditChain.objects.order_by("organization_id").values_list("organization_id", flat=True))


def audit_events_prune(*, now: datetime | None = None) -> int:
    """Delete the events older than AUDIT_RETENTION_DAYS, one organization per transaction; returns how many.

    Per organization, everything up to the newest expired event by `seq` goes (the chain stays contiguous),
    and the head remembers that event's number and hash: verification starts from there. Lock contract: the
    head row, as `record_many` takes it, so no event is appended while its chain is cut.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.AUDIT_RETENTION_DAYS)
    expired = (
        AuditEvent.objects.filter(occurred_at__lt=cutoff)
        .values_list("organization_id")
        .annotate(last=Max("seq"))
        .order_by("organization_id")
    )
    pruned = 0
    for organization_id, last in list(expired):
        with transaction.atomic():
            head = AuditChain.objects.select_for_update().get(organization_id=organization_id)
            anchor = AuditEvent.objects.get(organization_id=organization_id, seq=last)
            pruned += AuditEvent.objects.filter(organization_id=organization_id, seq__lte=last).delete()[0]
            head.pruned_seq, head.pruned_hash = anchor.seq, anchor.hash
            head.save(update_fields=["pruned_seq", "pruned_hash"])
    return pruned
