from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from customer_portal.services import portal_housekeeping_each
from portals.selectors import portal_get_by_ref, portal_list_all
from portalsite.progress import progress_bar


class Command(BaseCommand):
    help = (
        "Store 'expired' on invitations past their expiry and end sessions past theirs, in every portal "
        "(or one). A portal that fails is reported and the others are still cleaned; exits 1 if any failed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--portal", help="only this portal (id or slug)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["portal"] is not None:
            portal = portal_get_by_ref(ref=options["portal"])
            if portal is None:
                raise CommandError(f"No portal {options['portal']!r}")
            portals = [portal]
        else:
            portals = list(portal_list_all())
        with progress_bar(portals, stream=self.stderr, unit="portal") as progress:
            summary = portal_housekeeping_each(portals=progress)
        self.stdout.write(
            f"{summary.portals} portals: {summary.invitations_expired} invitations expired, "
            f"{summary.sessions_ended} sessions ended"
        )
        if summary.failed:
            raise CommandError(f"failed: {', '.join(summary.failed)}")
