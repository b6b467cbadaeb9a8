from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Organization
from accounts.selectors import organization_first_admin, organization_get_by_ref
from portals.services import portal_create, portal_host
from portalsite.errors import ApplicationError


class Command(BaseCommand):
    help = "Create a portal for an organization, as POST /v1/portal does; prints the portal id."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True, help="organization id or slug")
        parser.add_argument("--name", required=True, help="portal name")
        parser.add_argument("--slug", help="portal slug, its host label (derived from the name when omitted)")
        parser.add_argument("--custom-domain", help="an extra host name for the portal, e.g. portal.example.com")

    def handle(self, *args: Any, **options: Any) -> None:
        organization = organization_get_by_ref(ref=options["org"])
        if organization is None:
            raise CommandError(f"No organization {options['org']!r}")
        if organization.environment != Organization.Environment.PRODUCTION:
            raise CommandError(f"Organization {organization.slug} is a sandbox; only production ones have portals")
        # The service acts for an admin, as the API does: the org's first admin stands in for the operator.
        admin = organization_first_admin(organization=organization)
        if admin is None:
            raise CommandError(f"Organization {organization.slug} has no admin; add one first")
        try:
            portal = portal_create(
                admin=admin,
                name=options["name"],
                slug=options["slug"],
                custom_domain=options["custom_domain"],
                organization_id=organization.id,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(str(portal.id))
        self.stderr.write(f"Created portal {portal.slug} at {portal_host(portal.slug)} for {organization.slug}")
