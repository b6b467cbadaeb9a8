from typing import Any

from django.core.management.base import CommandError, CommandParser

from events.commands import OperatorCommand
from portals.domain_verification import custom_domains_verify_pending
from portals.selectors import portal_get_by_ref


class Command(OperatorCommand):
    help = (
        "Look up the TXT record of every pending custom domain now (or one portal's): found ones become "
        "verified, ones pending past DOMAIN_VERIFY_TIMEOUT become failed. The periodic job runs the same check."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--portal", help="portal id or slug: check only its custom domain")

    def handle(self, *args: Any, **options: Any) -> None:
        portal_id = None
        if options["portal"] is not None:
            portal = portal_get_by_ref(ref=options["portal"])
            if portal is None:
                raise CommandError(f"No portal {options['portal']!r}")
            portal_id = portal.id
        summary = custom_domains_verify_pending(portal_id=portal_id)
        for state, hosts in (("verified", summary.verified), ("failed", summary.failed),
                             ("still pending", summary.still_pending)):  # fmt: skip
            for host in hosts:
                self.stdout.write(f"{host}: {state}")
        self.stdout.write(
            f"{summary.checked} checked: {len(summary.verified)} verified, {len(summary.failed)} failed, "
            f"{len(summary.still_pending)} still pending"
        )
