"""`python -m bench.emails [--quick] [--json FILE]`: e-mail as jobs, against a mail server that takes 20 ms a message.

See bench/README.md ("bench.emails"). Works in its own throwaway database (`bench_emails_portalsite`) on
the configured server, dropped at the end; a real SMTP server (aiosmtpd, tests/smtp.py) listens on
loopback in this process; gunicorn and `manage.py worker` run as the deployment runs them.

1. The HTTP figure: `POST /v1/portal/{id}/users` of 1,000 e-mails (half of them account holders, linked;
   half invited), each into a fresh portal, on two servers taking turns: one whose EMAIL_URL is that
   slow SMTP server, and one with Django's in-memory backend. The invite queues the 1,000 e-mails as
   jobs in its transaction and answers; no worker runs meanwhile, so the two differ only in their mail
   configuration (the target: the slow mail server's p50 within 1.5x of the in-memory one).
2. The delivery figures: the jobs queued above are dropped (they are not measured); then one invite of
   1,000 and one `manage.py worker`, timed until its 1,000 messages are all accepted; then another
   invite and two workers. Each must deliver every message exactly once.
"""

import logging
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import job_runs
from bench.entry import django_main

DATABASE_NAME = "bench_emails_portalsite"
SMTP_DELAY_SECONDS = 0.020
HTTP_TARGET_RATIO = 1.5
DELIVERY_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class EmailPlan:
    repeats: int  # timed HTTP invites per mail configuration (after one warm-up each)
    invite_size: int
    worker_concurrency: int  # jobs each worker runs at once


DEFAULT_EMAILS = EmailPlan(repeats=5, invite_size=1000, worker_concurrency=4)
QUICK_EMAILS = EmailPlan(repeats=3, invite_size=1000, worker_concurrency=4)


@dataclass(frozen=True)
class Delivery:
    workers: int
    messages: int  # accepted by the mail server for this batch
    distinct: int  # distinct (recipient, subject) among them: == messages when none came twice
    expected: int
    first_to_last_seconds: float  # from the first message accepted to the last
    start_to_last_seconds: float  # from starting the workers to the last message accepted

    @property
    def per_second(self) -> float:
        return (self.messages - 1) / self.first_to_last_seconds if self.first_to_last_seconds else 0.0

    @property
    def complete(self) -> bool:
        return self.messages == self.distinct == self.expected


def run(argv: list[str]) -> int:
    arguments = job_runs.arguments(
        argv, prog="python -m bench.emails", doc=__doc__ or "", quick="3 HTTP invites per configuration instead of 5"
    )
    plan = QUICK_EMAILS if arguments.quick else DEFAULT_EMAILS
    logging.getLogger().setLevel(logging.WARNING)

    from django.conf import settings
    from django.db import connection

    from bench import scenarios
    from bench.database import BenchDatabaseBusy
    from bench.scenarios import log
    from bench.server import BenchServer
    from tests.smtp import SmtpServer

    started = time.perf_counter()
    log(f"bench.emails: {'quick' if arguments.quick else 'default'} run: {plan}")
    try:
        with (
            job_runs.bench_database(DATABASE_NAME) as (database_name, cache_dir),
            SmtpServer(delay=SMTP_DELAY_SECONDS) as smtp,
        ):
            log(f"throwaway database {database_name}; SMTP on {smtp.url}, {SMTP_DELAY_SECONDS * 1000:.0f} ms a message")
            _organization, admin = scenarios.bench_org_create()
            scenarios.global_accounts_create(plan.invite_size // 2)
            scenarios.pool_ensure(settings.PORTAL_SPARE_POOL_SIZE)
            servers = {
                "smtp": BenchServer(database_name=database_name, cache_dir=cache_dir, EMAIL_URL=smtp.url),
                "memory": BenchServer(database_name=database_name, cache_dir=cache_dir, EMAIL_URL="memorymail://"),
            }
            timings: dict[str, list[float]] = {name: [] for name in servers}
            with servers["smtp"], servers["memory"]:
                log(f"HTTP invites of {plan.invite_size}: one warm-up each, then {plan.repeats} each, taking turns")
                for index in range(plan.repeats + 1):
                    for name, server in servers.items():
                        elapsed, _portal = _http_invite(server, admin, plan.invite_size)
                        if index:
                            timings[name].append(elapsed)
                if smtp.received():
                    raise RuntimeError("a message was sent while no worker ran: the web process sent mail itself")
                _drop_queued_emails(connection)
                deliveries = [
                    _delivery(workers=count, servers=servers, smtp=smtp, admin=admin, plan=plan,
                              database_name=database_name, cache_dir=cache_dir)
                    for count in (1, 2)
                ]  # fmt: skip
    except BenchDatabaseBusy as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2

    meta = {
        "plan": asdict(plan),
        "smtp_delay_ms": SMTP_DELAY_SECONDS * 1000,
        "deliveries": [asdict(delivery) | {"per_second": delivery.per_second} for delivery in deliveries],
    }
    return job_runs.finish(_figures(timings, deliveries, plan), meta, json_path=arguments.json, started=started)


def _http_invite(server: Any, admin: Any, count: int) -> tuple[float, Any]:
    from bench import scenarios

    portal = scenarios.fresh_portal(admin)
    body = {"users": [{"email": email} for email in scenarios.invite_emails(count)]}  # send_email: true
    result = server.request("POST", f"/v1/portal/{portal.id}/users", body=body, token=scenarios.bearer_token(admin))
    if result.status != 201:
        raise RuntimeError(f"POST /v1/portal/{{id}}/users answered {result.status}: {result.body}")
    return result.elapsed_ms, portal


def _drop_queued_emails(connection: Any) -> None:
    """The HTTP figure's e-mails are not part of the delivery figures: out of the queue with them."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_jobs WHERE task_name = 'deliver_portal_email' AND status = 'todo'")


def _delivery(
    *,
    workers: int,
    servers: dict[str, Any],
    smtp: Any,
    admin: Any,
    plan: EmailPlan,
    database_name: str,
    cache_dir: Path,
) -> Delivery:
    from bench.scenarios import log

    # A batch through the server that names the slow mail server (the web process sends nothing either way).
    _elapsed, portal = _http_invite(servers["smtp"], admin, plan.invite_size)
    subjects = {f"You are invited to {portal.name}", f"You now have access to {portal.name}"}
    log(f"{plan.invite_size} e-mails queued; {workers} worker(s), concurrency {plan.worker_concurrency} each")
    start = job_runs.workers_until(
        lambda: [m for m in smtp.received() if m.subject in subjects],
        expected=plan.invite_size,
        workers=workers,
        concurrency=plan.worker_concurrency,
        database_name=database_name,
        cache_dir=cache_dir,
        timeout=DELIVERY_TIMEOUT_SECONDS,
        what="messages",
        EMAIL_URL=smtp.url,
    )
    batch = [m for m in smtp.received() if m.subject in subjects]  # anything sent twice shows here
    times = sorted(message.accepted_at for message in batch)
    distinct = len(Counter((tuple(m.recipients), m.subject) for m in batch))
    delivery = Delivery(
        workers=workers,
        messages=len(batch),
        distinct=distinct,
        expected=plan.invite_size,
        first_to_last_seconds=round(times[-1] - times[0], 3),
        start_to_last_seconds=round(times[-1] - start, 3),
    )
    log(
        f"  {delivery.messages} messages ({delivery.distinct} distinct) in {delivery.first_to_last_seconds:.1f} s"
        f" first to last: {delivery.per_second:.0f} messages/s"
    )
    return delivery


def _figures(timings: dict[str, list[float]], deliveries: list[Any], plan: EmailPlan) -> list[Any]:
    from bench.report import Figure, Spread

    smtp, memory = Spread.of(timings["smtp"]), Spread.of(timings["memory"])
    ratio = smtp.median / memory.median
    figures = [
        Figure(
            "email_invite_http",
            f"POST /v1/portal/{{id}}/users, {plan.invite_size} e-mails, mail server 20 ms a message",
            "ms",
            smtp,
            memory,
            "EMAIL_URL=memorymail://",
            f"p50 <= {HTTP_TARGET_RATIO}x",
            ratio <= HTTP_TARGET_RATIO,
            f"{ratio:.2f}x",
            section="e-mail as jobs",
        )
    ]
    for delivery in deliveries:
        figures.append(
            Figure(
                f"email_delivery_{delivery.workers}_worker{'s' if delivery.workers > 1 else ''}",
                f"delivery, {delivery.workers} worker{'s' if delivery.workers > 1 else ''} x concurrency "
                f"{plan.worker_concurrency}, first to last of {delivery.expected} messages",
                "messages/s",
                Spread.of([delivery.per_second]),
                None,
                "",
                f"all {delivery.expected} arrive, once each",
                delivery.complete,
                f"{delivery.messages} arrived, {delivery.distinct} distinct",
                section="e-mail as jobs",
            )
        )
    return figures


if __name__ == "__main__":
    sys.exit(django_main(lambda: run, sys.argv[1:]))
