from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portalsite.jobs import worker_run


class Command(BaseCommand):
    help = (
        "Run background jobs (e-mails, clean-ups, spare-schema refills, periodic jobs) until SIGTERM or "
        "SIGINT: then take no new job, finish the running ones and exit 0. Run any number, on any machine."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--concurrency",
            type=int,
            default=None,
            help=f"jobs run at once (default JOBS_WORKER_CONCURRENCY, now {settings.JOBS_WORKER_CONCURRENCY})",
        )
        parser.add_argument(
            "--queue",
            action="append",
            dest="queues",
            metavar="Q",
            help="only jobs of this queue (repeat for several; default: every queue)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        concurrency = settings.JOBS_WORKER_CONCURRENCY if options["concurrency"] is None else options["concurrency"]
        if concurrency < 1:
            raise CommandError("--concurrency must be at least 1")
        worker_run(concurrency=concurrency, queues=options["queues"])
