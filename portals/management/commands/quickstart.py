import secrets
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Organization
from accounts.services import organization_create
from portals.models import portal_host
from portals.provisioning import spare_pool_refill
from portals.selectors import portal_get_by_ref
from portals.services import portal_create
from portalsite.errors import ApplicationError

DEMO_ORG_NAME = "Demo Organization"
DEMO_ADMIN_EMAIL = "admin@demo.example.com"
DEMO_PORTAL_NAME = "Demo Portal"
DEMO_PORTAL_SLUG = "demo"


class Command(BaseCommand):
    help = (
        "Migrate, create the public tenant, a demo organization with an admin and a demo portal, "
        "print how to call the API, then serve."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-serve", action="store_true", help="set up and exit")
        parser.add_argument("--addrport", default="127.0.0.1:8000", help="where to serve (default 127.0.0.1:8000)")

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write("Migrating the public schema and every portal ...")
        call_command("migrate_schemas", interactive=False, verbosity=0)
        if not settings.WHITENOISE_USE_FINDERS:
            call_command("collectstatic", interactive=False, verbosity=0)

        password = self._demo_admin_password()
        self._demo_portal()
        base = f"http://{options['addrport']}"
        port = options["addrport"].rsplit(":", 1)[-1]
        host = portal_host(DEMO_PORTAL_SLUG)
        self.stdout.write(
            f"\nLog in as {DEMO_ADMIN_EMAIL} / {password}\n\n"
            f"  curl {base}/healthz\n"
            f"  curl -X POST {base}/v1/auth/token -H 'Content-Type: application/json' \\\n"
            f'       -d \'{{"email": "{DEMO_ADMIN_EMAIL}", "password": "{password}"}}\'\n'
            f'  # then, with <access> the "access" value of that answer:\n'
            f'  curl {base}/v1/portal -H "Authorization: Bearer <access>"\n\n'
            f"{DEMO_PORTAL_NAME} is served on the host {host} (http://{host}:{port}/)\n"
            f"API docs: {base}/api/docs/ (Swagger UI), {base}/api/redoc/, schema at {base}/api/schema/\n"
        )
        if not options["no_serve"]:
            # No autoreloader: it would re-run this whole command in a child process.
            call_command("runserver", options["addrport"], use_reloader=False)

    def _demo_admin_password(self) -> str:
        """Create the demo org and admin once; later runs change nothing and say so."""
        password_file = settings.DATA_DIR / "demo_admin_password"
        if Organization.objects.filter(name=DEMO_ORG_NAME).exists():
            self.stdout.write(self.style.SUCCESS(f"{DEMO_ORG_NAME} already exists; nothing changed."))
            if password_file.exists():
                return password_file.read_text().strip()
            return f"(set when it was created; reset with: manage.py changepassword {DEMO_ADMIN_EMAIL})"
        password = secrets.token_urlsafe(12)
        organization_create(name=DEMO_ORG_NAME, admin_email=DEMO_ADMIN_EMAIL, admin_password=password)
        settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
        password_file.write_text(password)
        password_file.chmod(0o600)
        self.stdout.write(self.style.SUCCESS(f"Created {DEMO_ORG_NAME} and its admin."))
        return password

    def _demo_portal(self) -> None:
        """Create the demo portal once, for the demo org; later runs leave it alone."""
        # A full pool makes this create, and the first ones made through the API, take milliseconds.
        spare_pool_refill()
        if portal_get_by_ref(ref=DEMO_PORTAL_SLUG) is not None:
            self.stdout.write(self.style.SUCCESS(f"{DEMO_PORTAL_NAME} ({DEMO_PORTAL_SLUG}) already exists."))
            return
        organization = Organization.objects.get(name=DEMO_ORG_NAME)
        try:
            portal_create(organization=organization, created_by=None, name=DEMO_PORTAL_NAME, slug=DEMO_PORTAL_SLUG)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"Created {DEMO_PORTAL_NAME} at {portal_host(DEMO_PORTAL_SLUG)}."))
