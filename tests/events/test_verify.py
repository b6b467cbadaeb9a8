"""verify_audit_log: an intact chain passes; altering, deleting or reordering any event is reported at the
first broken one. Retention prunes old events and the chain still verifies from its anchor."""

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.models import Organization
from events.models import AuditChain, AuditEvent
from events.services import Target, record
from events.tasks import audit_prune
from events.verification import audit_events_prune
from tests.conftest import run_command
from tests.jobs import run_jobs

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(organization: Organization) -> list[AuditEvent]:
    return [
        record(action="portal.updated", organization_id=organization.id, target=Target("portal", "p", f"v{n}"))
        for n in range(1, 6)
    ]


def _verify(organization: Organization) -> str:
    out, _ = run_command("verify_audit_log", "--org", organization.slug)
    return out


def _broken(organization: Organization) -> str:
    with pytest.raises(CommandError) as error:
        _verify(organization)
    return str(error.value)


def test_an_intact_chain_passes(organization: Organization, chain: list[AuditEvent]) -> None:
    assert f"organization {organization.id}: 5 events, chain intact" in _verify(organization)


def test_every_chain_is_checked_without_org(organization: Organization, chain: list[AuditEvent]) -> None:
    out, _ = run_command("verify_audit_log")
    assert f"organization {organization.id}: 5 events, chain intact" in out


def test_an_altered_event_is_named(organization: Organization, chain: list[AuditEvent]) -> None:
    AuditEvent.objects.filter(id=chain[2].id).update(target_label="something else")

    message = _broken(organization)

    assert f"event {chain[2].id} (#3, portal.updated" in message
    assert "altered" in message


def test_an_event_altered_with_its_hash_recomputed_breaks_the_next(
    organization: Organization, chain: list[AuditEvent]
) -> None:
    from events.chain import event_hash

    forged = AuditEvent.objects.get(id=chain[1].id)
    forged.changes = {"name": ["a", "b"]}
    forged.hash = event_hash(forged)
    forged.save()

    assert f"event {chain[2].id} (#3" in _broken(organization)


def test_a_deleted_event_is_reported_at_the_one_after_it(organization: Organization, chain: list[AuditEvent]) -> None:
    AuditEvent.objects.filter(id=chain[1].id).delete()

    message = _broken(organization)

    assert f"event {chain[2].id} (#3" in message and "events 2..2 are missing" in message


def test_deleting_the_newest_events_is_reported(organization: Organization, chain: list[AuditEvent]) -> None:
    AuditEvent.objects.filter(id__in=[chain[3].id, chain[4].id]).delete()

    assert "after event 3: the newest events (4..5) are missing" in _broken(organization)


def test_reordered_events_are_reported_at_the_first_out_of_place(
    organization: Organization, chain: list[AuditEvent]
) -> None:
    AuditEvent.objects.filter(id=chain[1].id).update(seq=-1)
    AuditEvent.objects.filter(id=chain[2].id).update(seq=2)
    AuditEvent.objects.filter(id=chain[1].id).update(seq=3)

    message = _broken(organization)

    assert f"event {chain[2].id} (#2" in message and "does not follow" in message


def test_an_unknown_organization_is_a_one_line_error(db: None) -> None:
    with pytest.raises(CommandError, match="No organization 'nope'"):
        run_command("verify_audit_log", "--org", "nope")


# Retention --------------------------------------------------------------------------------------


def _age(events: list[AuditEvent], days: int) -> None:
    AuditEvent.objects.filter(id__in=[event.id for event in events]).update(
        occurred_at=timezone.now() - timedelta(days=days)
    )


def test_pruning_keeps_the_retention_and_the_chain_verifies_from_its_anchor(
    organization: Organization, chain: list[AuditEvent]
) -> None:
    _age(chain[:3], days=settings.AUDIT_RETENTION_DAYS + 1)

    assert audit_events_prune() == 3

    assert list(AuditEvent.objects.filter(organization_id=organization.id).order_by("seq")) == chain[3:]
    head = AuditChain.objects.get(organization_id=organization.id)
    assert (head.pruned_seq, head.pruned_hash, head.seq) == (3, chain[2].hash, 5)
    assert f"organization {organization.id}: 2 events, chain intact" in _verify(organization)
    record(action="portal.updated", organization_id=organization.id, target=Target("portal", "p", "v6"))
    assert "3 events, chain intact" in _verify(organization)


def test_after_pruning_removing_the_oldest_kept_event_is_still_caught(
    organization: Organization, chain: list[AuditEvent]
) -> None:
    _age(chain[:2], days=settings.AUDIT_RETENTION_DAYS + 1)
    audit_events_prune()

    AuditEvent.objects.filter(id=chain[2].id).delete()

    assert "events 3..3 are missing" in _broken(organization)


def test_the_retention_is_a_setting(organization: Organization, chain: list[AuditEvent], settings: Any) -> None:
    settings.AUDIT_RETENTION_DAYS = 30
    _age(chain[:1], days=31)
    _age(chain[1:2], days=29)

    assert audit_events_prune() == 1


def test_the_daily_job_prunes(organization: Organization, chain: list[AuditEvent]) -> None:
    assert "audit_prune" in settings.PERIODIC_JOBS
    _age(chain[:1], days=settings.AUDIT_RETENTION_DAYS + 1)

    audit_prune.defer(timestamp=0)
    run_jobs()

    assert AuditEvent.objects.filter(organization_id=organization.id).count() == 4
