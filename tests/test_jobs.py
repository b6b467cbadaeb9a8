"""The job queue: jobs commit or roll back with their change, the periodic jobs, the queue's upkeep."""

from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import tenant_context
from procrastinate import sql
from procrastinate.contrib.django import app
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from customer_portal.models import Invitation
from customer_portal.services import InviteEntry, portal_users_invite
from portals.models import Portal
from tests.conftest import make_portal
from tests.factories import UserFactory
from tests.jobs import queued_jobs, run_jobs

pytestmark = pytest.mark.django_db

REFILL = "spare_pool_refill"


def _spares() -> int:
    return Portal.objects.filter(is_spare=True).count()


# Deferred inside the transaction of the change ------------------------------------------------


def test_a_create_queues_one_refill_in_its_own_transaction(owner: User, spare_pool: None) -> None:
    make_portal(owner, name="First")
    make_portal(owner, name="Second")

    # The second create found the first one's refill still waiting: one refill does for both.
    assert [job.task_name for job in queued_jobs()] == [REFILL]


def test_a_create_that_rolls_back_leaves_no_job(owner: User, spare_pool: None) -> None:
    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        make_portal(owner, name="Doomed")
        assert [job.task_name for job in queued_jobs()] == [REFILL]
        raise Abort

    assert queued_jobs() == []
    assert not Portal.objects.filter(name="Doomed").exists()


def test_the_refill_job_tops_the_pool_up_again(owner: User, spare_pool: None) -> None:
    before = _spares()
    make_portal(owner, name="Takes one")
    assert _spares() == before - 1

    runs = run_jobs()

    assert [(run.task_name, run.status, run.error) for run in runs] == [(REFILL, "succeeded", None)]
    assert _spares() == settings.PORTAL_SPARE_POOL_SIZE
    assert queued_jobs() == []


# Periodic jobs -------------------------------------------------------------------------------


def test_every_schedule_in_settings_is_a_periodic_job_and_nothing_else_is() -> None:
    registered = {
        periodic.periodic_id: (periodic.task.name, periodic.cron)
        for periodic in app.periodic_registry.periodic_tasks.values()
    }

    assert registered == {name: (name, cron) for name, cron in settings.PERIODIC_JOBS.items()}
    assert all(app.tasks[name].queueing_lock == name for name in settings.PERIODIC_JOBS)


def _invite_and_expire(portal: Portal, email: str) -> None:
    with tenant_context(portal):
        portal_users_invite(portal=portal, entries=[InviteEntry(email=email)], invited_by=None, send_email=False)
        Invitation.objects.filter(portal_user__email=email).update(expires_at=timezone.now() - timedelta(minutes=1))


def test_the_housekeeping_job_expires_invitations_in_every_portal(owner: User, spare_pool: None) -> None:
    first = make_portal(owner, name="First")
    second = make_portal(owner, name="Second")
    for portal in (first, second):
        _invite_and_expire(portal, "late@example.com")

    app.tasks["portal_housekeeping"].defer(timestamp=0)
    runs = run_jobs(queues=["maintenance"])

    assert ("portal_housekeeping", "succeeded") in [(run.task_name, run.status) for run in runs]
    for portal in (first, second):
        with tenant_context(portal):
            assert Invitation.objects.get().status == Invitation.Status.EXPIRED


def test_the_token_flush_job_deletes_only_expired_refresh_tokens() -> None:
    account = UserFactory()
    live = RefreshToken.for_user(account)
    expired = RefreshToken.for_user(account)
    OutstandingToken.objects.filter(jti=expired["jti"]).update(expires_at=timezone.now() - timedelta(seconds=1))

    app.tasks["flush_expired_tokens"].defer(timestamp=0)
    [run] = run_jobs()

    assert run.status == "succeeded"
    assert list(OutstandingToken.objects.filter(user=account).values_list("jti", flat=True)) == [live["jti"]]


# The queue's upkeep --------------------------------------------------------------------------


def _register_worker() -> int:
    return app.connector.execute_query_one(query=sql.queries["register_worker"])["worker_id"]


def _take(worker_id: int) -> int:
    """Make `worker_id` take the next job (status `doing`), as its fetch would."""
    row = app.connector.execute_query_one(query=sql.queries["fetch_job"], queues=None, worker_id=worker_id)
    assert row["id"] is not None
    return row["id"]


def _heartbeat_age(worker_id: int, age: timedelta) -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE procrastinate_workers SET last_heartbeat = now() - %s WHERE id = %s", [age, worker_id])


# A task with neither lock nor queueing lock, harmless whenever it runs (it deletes jobs ended ages ago).
UNLOCKED_TASK = "builtin:procrastinate.builtin_tasks.remove_old_jobs"


def test_jobs_of_a_dead_worker_are_run_again_and_a_live_workers_are_left_alone() -> None:
    task = app.tasks[UNLOCKED_TASK]
    dead, live = _register_worker(), _register_worker()
    task.defer(max_hours=100_000)
    task.defer(max_hours=100_000)
    dead_job, live_job = _take(dead), _take(live)
    _heartbeat_age(dead, timedelta(seconds=settings.JOBS_STALLED_AFTER + 1))

    app.tasks["retry_stalled_jobs"].defer(timestamp=0)
    runs = run_jobs()

    assert [(run.task_name, run.status) for run in runs] == [
        ("retry_stalled_jobs", "succeeded"),
        (UNLOCKED_TASK, "succeeded"),
    ]
    assert runs[1].id == dead_job and runs[1].attempts == 1  # the killed run counts as an attempt
    [still_running] = queued_jobs(status="doing")
    assert still_running.id == live_job


def test_the_prune_job_deletes_ended_jobs_past_the_retention_only(settings) -> None:
    task = app.tasks[UNLOCKED_TASK]
    old, recent = task.defer(max_hours=100_000), task.defer(max_hours=100_000)
    run_jobs()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE procrastinate_events SET at = now() - %s WHERE job_id = %s",
            [timedelta(hours=settings.JOBS_RETENTION_HOURS, minutes=1), old],
        )

    app.tasks["prune_jobs"].defer(timestamp=0)
    run_jobs()

    remaining = {job.id for job in queued_jobs(status="succeeded")}
    assert old not in remaining and recent in remaining


def test_the_worker_refuses_no_concurrency() -> None:
    with pytest.raises(CommandError, match=r"^--concurrency must be at least 1$"):
        call_command("worker", "--concurrency", "0", stdout=StringIO())
