import sys
from typing import Any

from django.core.management.base import CommandError, CommandParser

from events.commands import OperatorCommand
from portals.cli import portal_argument
from portals.services import portal_delete
from portalsite.errors import ApplicationError


class Command(OperatorCommand):
    help = "Delete a portal and drop its schema with all its data, as DELETE /v1/portal/{id}. Asks first unless --yes."
    stealth_options = ("stdin",)  # call_command(..., stdin=...) in tests, as createsuperuser takes it

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("portal", help="portal id or slug")
        parser.add_argument("--yes", action="store_true", help="do not ask (for scripts)")

    def handle(self, *args: Any, **options: Any) -> None:
        portal = portal_argument(options["portal"])
        if not options["yes"]:
            stdin = options.get("stdin") or sys.stdin
            if not stdin.isatty():
                raise CommandError("stdin is not a terminal and --yes was not given; nothing was deleted")
            self.stdout.write(f"Drop portal {portal.slug} and all its data? [y/N] ", ending="")
            self.stdout.flush()
            if stdin.readline().strip().lower() not in {"y", "yes"}:
                raise CommandError("Aborted; nothing was deleted")
        try:
            portal_delete(portal=portal)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"Deleted portal {portal.slug}"))
