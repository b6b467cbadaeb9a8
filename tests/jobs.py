"""Run queued jobs in the test's own thread and transaction.

A test's data is never committed (each test is one rolled-back transaction), so a worker on another
connection, or procrastinate's own worker, whose sync tasks run in threads of their own (one Django
connection each), would see none of it. `run_jobs` does what a worker does for each job, on the
test's connection: it fetches the next due job with procrastinate's own SQL function (so queues,
locks, priorities and schedules apply as in production), runs the task, and then finishes it or
hands the error to the task's own retry strategy, which reschedules it through procrastinate's SQL as
a worker would. The job rows are real and were written inside the test's transaction by the code
under test: a change that rolled back left no job behind to run.

Two things a real worker adds are not here: the heartbeat (see the tests that run `manage.py worker`)
and wall-clock waiting. PostgreSQL's `now()` stands still inside a transaction, so a job scheduled for
later (a retry) only runs when the test moves its clock: `run_jobs(advance=...)` makes every job due
within that much time due now.
"""

import inspect
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import async_to_sync
from django.db import connection
from django.utils import timezone
from procrastinate import job_context, jobs, sql
from procrastinate.contrib.django import app

WORKER_NAME = "in-process"


@dataclass(frozen=True)
class JobRun:
    id: int
    task_name: str
    task_kwargs: dict[str, Any]
    status: str  # "succeeded", "failed", or "retry" (rescheduled by the task's retry strategy)
    error: BaseException | None = None
    retry_at: datetime | None = None
    attempts: int = 0  # attempts before this run


def queued_jobs(*, task_name: str | None = None, status: str = "todo") -> list[jobs.Job]:
    """The jobs in the queue with this status, oldest first."""
    rows = app.connector.execute_query_all(
        query=sql.queries["list_jobs"],
        id=None,
        queue_name=None,
        task_name=task_name,
        status=status,
        lock=None,
        queueing_lock=None,
        worker_id=None,
    )
    return sorted((_job(row) for row in rows), key=lambda job: job.id or 0)


def _job(row: dict[str, Any]) -> jobs.Job:
    # Django's connection loads jsonb as text (JSONField decodes it); procrastinate's own connector as JSON.
    if isinstance(row["args"], str):
        row = {**row, "args": json.loads(row["args"])}
    return jobs.Job.from_row(row)


SAFETY_LIMIT = 5000  # runs in one call without `limit`: more means a job keeps rescheduling itself


def run_jobs(
    *, queues: list[str] | None = None, advance: timedelta = timedelta(0), limit: int | None = None
) -> list[JobRun]:
    """Run every due job (those of `queues`, default all) until none is left, or `limit` jobs ran; returns
    what each run did, in order.

    A job a run reschedules for later than `advance` from now stays queued; call again (with a larger
    `advance`) to run it.
    """
    cap = SAFETY_LIMIT if limit is None else limit
    connector = app.connector
    worker_id = connector.execute_query_one(query=sql.queries["register_worker"])["worker_id"]
    runs: list[JobRun] = []
    try:
        while len(runs) < cap:
            _make_due(timezone.now() + advance)
            row = connector.execute_query_one(query=sql.queries["fetch_job"], queues=queues, worker_id=worker_id)
            if row["id"] is None:
                break
            runs.append(_run(_job(row)))
    finally:
        connector.execute_query(query=sql.queries["unregister_worker"], worker_id=worker_id)
    assert limit is not None or len(runs) < SAFETY_LIMIT, f"{SAFETY_LIMIT} jobs ran: one keeps rescheduling itself?"
    return runs


def _make_due(until: datetime) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE procrastinate_jobs SET scheduled_at = NULL WHERE status = 'todo' AND scheduled_at <= %s", [until]
        )


def _run(job: jobs.Job) -> JobRun:
    assert job.id is not None
    task = app.tasks[job.task_name]
    context = job_context.JobContext(
        app=app, worker_name=WORKER_NAME, job=job, start_timestamp=time.time(), abort_reason=lambda: None
    )
    args = [context] if task.pass_context else []
    manager = app.job_manager
    try:
        if inspect.iscoroutinefunction(task.func):
            # async_to_sync from this thread: the Django connector's queries come back to it (our connection).
            async_to_sync(task.func)(*args, **job.task_kwargs)
        else:
            task.func(*args, **job.task_kwargs)
    except Exception as exc:
        job_retry = task.get_retry_exception(exception=exc, job=job)
        if job_retry is None:
            _finish(job.id, jobs.Status.FAILED)
            return JobRun(job.id, job.task_name, job.task_kwargs, "failed", exc, attempts=job.attempts)
        decision = job_retry.retry_decision
        retry_at = decision.retry_at or timezone.now()
        manager.retry_job_by_id(
            job_id=job.id, retry_at=retry_at, priority=decision.priority, queue=decision.queue, lock=decision.lock
        )
        return JobRun(job.id, job.task_name, job.task_kwargs, "retry", exc, retry_at, job.attempts)
    _finish(job.id, jobs.Status.SUCCEEDED)
    return JobRun(job.id, job.task_name, job.task_kwargs, "succeeded", attempts=job.attempts)


def _finish(job_id: int, status: jobs.Status) -> None:
    app.connector.execute_query(query=sql.queries["finish_job"], job_id=job_id, status=status.value, delete_job=False)
