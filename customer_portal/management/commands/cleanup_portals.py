import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import tenant_context

from customer_portal.services import portal_housekeeping
from portals.cli import portal_argument
from portals.models import Portal
from portals.selectors import portal_list_all
from portalsite.progress import progress_bar

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Store 'expired' on invitations past their expiry and end sessions past theirs, in every portal "
        "(or one). A portal that fails is reported and the others are still cleaned; exits 1 if any failed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--portal", help="only this portal (id or slug)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["portal"] is not None:
            portal = portal_argument(options["portal"])
            portals = [portal]
        else:
            portals = list(portal_list_all())
        expired = ended = 0
        failed: list[str] = []
        with progress_bar(portals, stream=self.stderr, unit="portal") as progress:
            for portal in progress:
                try:
                    portal_expired, portal_ended = _clean(portal)
                except Exception:
                    # One broken portal (say, its schema is gone) must not keep the others uncleaned.
                    logger.exception("cleanup of portal %s (%s) failed", portal.slug, portal.id)
                    failed.append(portal.slug)
                    continue
                expired += portal_expired
                ended += portal_ended
        self.stdout.write(f"{len(portals)} portals: {expired} invitations expired, {ended} sessions ended")
        if failed:
            raise CommandError(f"failed: {', '.join(failed)}")


def _clean(portal: Portal) -> tuple[int, int]:
    with tenant_context(portal):
        return portal_housekeeping()
