from typing import Any

from django.core.management.base import CommandError, CommandParser

from accounts.cli import organization_argument
from events.commands import OperatorCommand
from portals.services import portal_create
from portalsite.errors import ApplicationError


class Command(OperatorCommand):
    help = "Create a portal for an organization, as POST /v1/portal does; prints the portal id."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True, help="organization id or slug")
        parser.add_argument("--name", required=True, help="portal name")
        parser.add_argument("--slug", help="portal slug, its host label (derived from the name when omitted)")
        parser.add_argument("--custom-domain", help="an extra host name for the portal, e.g. portal.example.com")

    def handle(self, *args: Any, **options: Any) -> None:
        organization = organization_argument(options["org"])
        try:
            portal = portal_create(
                organization=organization,
                created_by=None,  # an operator
                name=options["name"],
                slug=options["slug"],
                custom_domain=options["custom_domain"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(str(portal.id))
        self.stderr.write(f"Created portal {portal.slug} at {portal.default_domain} for {organization.slug}")
