from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.cli import organization_argument
from events.verification import ChainBreak, audit_chain_organization_ids, audit_chain_verify


def _describe(broken: ChainBreak) -> str:
    if broken.event is None:
        return f"after event {broken.after_seq}: {broken.reason}"
    event = broken.event
    return f"event {event.id} (#{event.seq}, {event.action} at {event.occurred_at.isoformat()}): {broken.reason}"


class Command(BaseCommand):
    help = "Check the audit log's hash chain of every organization (or one); exit 1 at the first broken event."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", help="organization id or slug")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["org"]:
            organization_ids = [organization_argument(options["org"]).id]
        else:
            organization_ids = audit_chain_organization_ids()
        for organization_id in organization_ids:
            report = audit_chain_verify(organization_id=organization_id)
            if report.broken is not None:
                raise CommandError(f"organization {organization_id}: broken at {_describe(report.broken)}")
            self.stdout.write(f"organization {organization_id}: {report.verified} events, chain intact")
        self.stdout.write(self.style.SUCCESS(f"{len(organization_ids)} chain(s) verified"))
