from typing import Any

from django.core.management.base import CommandError, CommandParser

from customer_portal.services import portal_housekeeping_each
from events.commands import OperatorCommand
from portals.cli import portal_argument
from portals.selectors import portal_list_all
from portalsite.progress import progress_bar


class Command(OperatorCommand):
    help = (
        "Store 'expired' on invitations past their expiry and end sessions past theirs, in every portal "
        "(or one). A portal that fails is reported and the others are still cleaned; exits 1 if any failed. "
        "Workers also do this periodically (the portal_housekeeping job)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--portal", help="only this portal (id or slug)")

    def handle(self, *args: Any, **options: Any) -> None:
        ref = options["portal"]
        portals = [portal_argument(ref)] if ref is not None else list(portal_list_all())
        with progress_bar(portals, stream=self.stderr, unit="portal") as progress:
            summary = portal_housekeeping_each(portals=progress)
        self.stdout.write(
            f"{summary.portals} portals: {summary.invitations_expired} invitations expired, "
            f"{summary.sessions_ended} sessions ended"
        )
        if summary.failed:
            raise CommandError(f"failed: {', '.join(summary.failed)}")
