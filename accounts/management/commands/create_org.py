import secrets
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Organization
from accounts.services import organization_create
from portalsite.errors import ApplicationError


class Command(BaseCommand):
    help = "Create an organization and its first admin; prints the organization id."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="organization name")
        parser.add_argument("--admin-email", required=True, help="the admin's e-mail (an existing account is reused)")
        parser.add_argument("--admin-password", help="password for a new admin account (generated when omitted)")
        parser.add_argument("--sandbox", action="store_true", help="a sandbox organization (no /v1/portal access)")

    def handle(self, *args: Any, **options: Any) -> None:
        password = options["admin_password"] or secrets.token_urlsafe(12)
        environment = Organization.Environment.SANDBOX if options["sandbox"] else Organization.Environment.PRODUCTION
        try:
            organization, admin, admin_created = organization_create(
                name=options["name"],
                admin_email=options["admin_email"],
                admin_password=password,
                environment=environment,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(str(organization.id))
        if admin_created:
            shown = "(as given)" if options["admin_password"] else password
            self.stderr.write(f"Created admin {admin.email} with password {shown}")
        else:
            self.stderr.write(f"Made the existing account {admin.email} an admin (password unchanged)")
