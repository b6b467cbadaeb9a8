"""The job queue: procrastinate's Django app, how tasks and periodic jobs are declared, the worker.

Jobs live in PostgreSQL (procrastinate's tables, in the public schema). Deferring a job from a
service goes through procrastinate's Django connector, that is Django's own connection: the job row
is written inside the caller's transaction and commits or rolls back with the change that caused
it. Tasks take ids, never model instances, and enter `tenant_context` themselves for portal work.

Tasks live in each app's `tasks.py` (procrastinate's autodiscovery imports them, so `manage.py worker`
needs no import of its own); periodic jobs are declared with `@periodic_job(name)`, their schedules
all in `settings.PERIODIC_JOBS`. This module also holds the queue's own upkeep: stalled jobs and
pruning.
"""

import asyncio
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from procrastinate import exceptions as procrastinate_exceptions
from procrastinate.contrib.django import app
from procrastinate.contrib.django.django_connector import DjangoConnector
from procrastinate.jobs import Job
from procrastinate.retry import BaseRetryStrategy, RetryDecision
from procrastinate.tasks import Task

from portalsite.mail import TemporaryDeliveryFailure

logger = logging.getLogger(__name__)

__all__ = ["EMAIL_RETRY", "ScheduledRetry", "app", "periodic_job", "stalled_jobs_retry", "worker_run"]

# Queues: `manage.py worker --queue Q` runs only some (say, e-mail on machines of their own).
MAINTENANCE_QUEUE = "maintenance"
EMAIL_QUEUE = "email"

AlreadyEnqueued = procrastinate_exceptions.AlreadyEnqueued


def periodic_job(name: str, *, queue: str = MAINTENANCE_QUEUE) -> Callable[[Callable[..., Any]], Task[Any, Any, Any]]:
    """Declare `func(timestamp)` as the task `name`, deferred on the schedule `settings.PERIODIC_JOBS[name]`.

    The task's queueing lock is its name: while one tick's job still waits (no worker is running),
    later ticks add nothing to the queue. Its lock is its name too: two ticks never run at once.
    """
    cron = settings.PERIODIC_JOBS[name]

    def declare(func: Callable[..., Any]) -> Task[Any, Any, Any]:
        task = app.task(name=name, queue=queue, queueing_lock=name, lock=name)(func)
        return app.periodic(cron=cron, periodic_id=name)(task)

    return declare


@dataclass(frozen=True)
class ScheduledRetry(BaseRetryStrategy):
    """Retry a job that raised one of `retry_on` after `schedule[n]` seconds, n being the attempts it had
    before (0 for its first run), while the schedule lasts; any other exception is not retried.

    `setting` names the schedule in the settings (say EMAIL_RETRY_SCHEDULE), read when a job fails.
    """

    setting: str
    retry_on: tuple[type[BaseException], ...]

    def delay(self, *, attempts: int) -> int | None:
        """Seconds before the next try after a job's attempt number `attempts` (0-based) failed; None: no more."""
        schedule: list[int] = getattr(settings, self.setting)
        return schedule[attempts] if attempts < len(schedule) else None

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if not isinstance(exception, self.retry_on):
            return None
        delay = self.delay(attempts=job.attempts)
        return None if delay is None else RetryDecision(retry_in={"seconds": delay})


# Every e-mail job: a temporary failure (unreachable, 4xx) is tried again on EMAIL_RETRY_SCHEDULE.
EMAIL_RETRY = ScheduledRetry(setting="EMAIL_RETRY_SCHEDULE", retry_on=(TemporaryDeliveryFailure,))


# The queue's own upkeep -----------------------------------------------------------------------


async def stalled_jobs_retry(*, seconds_since_heartbeat: float | None = None) -> list[int]:
    """Put the running jobs of dead workers back in the queue; returns their ids.

    A worker is dead when its heartbeat is older than JOBS_STALLED_AFTER seconds (procrastinate's
    definition of a stalled worker): it was killed (SIGKILL, out of memory) or its machine went away
    while it held jobs, and nobody else would ever run them. Each retry counts as an attempt of the
    job (its retry schedule still applies). Two workers retrying the same job at once is harmless:
    the second finds it no longer running.
    """
    seconds = settings.JOBS_STALLED_AFTER if seconds_since_heartbeat is None else seconds_since_heartbeat
    retried = []
    for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=seconds):
        try:
            await app.job_manager.retry_job(job)
        except procrastinate_exceptions.ConnectorException:
            continue  # another worker put it back first
        logger.warning("job %s (%s) was running on a dead worker: queued again", job.id, job.task_name)
        assert job.id is not None
        retried.append(job.id)
    return retried


@periodic_job("retry_stalled_jobs")
async def retry_stalled_jobs(timestamp: int) -> None:
    await stalled_jobs_retry()


@periodic_job("prune_jobs")
async def prune_jobs(timestamp: int) -> None:
    """Delete jobs that ended more than JOBS_RETENTION_HOURS ago, whatever their outcome (what an e-mail's
    delivery came to is kept on the row it was about, not in the job)."""
    await app.job_manager.delete_old_jobs(
        nb_hours=settings.JOBS_RETENTION_HOURS, include_failed=True, include_cancelled=True, include_aborted=True
    )


# The worker -----------------------------------------------------------------------------------


def worker_run(*, concurrency: int, queues: Iterable[str] | None = None, wait: bool = True) -> None:
    """Run jobs until SIGTERM or SIGINT (or, with `wait=False`, until the queues are empty).

    On the first signal the worker takes no new job, lets the running ones finish, unregisters and
    returns; a second signal ends the process at once (its running jobs become stalled, and another
    worker runs them again). First it puts back the jobs of workers that died.
    """
    asyncio.run(_worker(concurrency=concurrency, queues=list(queues) if queues else None, wait=wait))


async def _worker(*, concurrency: int, queues: list[str] | None, wait: bool) -> None:
    # Sync tasks run in the loop's default executor: give it one thread per job the worker may run.
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="job")
    )
    # Django's connector writes through Django's connection (one per thread, inside its transactions);
    # the worker needs procrastinate's own async pool, with LISTEN/NOTIFY, on the same database.
    connector = app.connector
    assert isinstance(connector, DjangoConnector), connector
    with app.replace_connector(connector.get_worker_connector()):
        async with app.open_async():
            await stalled_jobs_retry()
            if queues:
                await app.run_worker_async(concurrency=concurrency, queues=queues, wait=wait)
            else:
                await app.run_worker_async(concurrency=concurrency, wait=wait)  # every queue
