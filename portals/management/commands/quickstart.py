import secrets
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from accounts.models import Organization
from accounts.services import organization_create

DEMO_ORG_NAME = "Demo Organization"
DEMO_ADMIN_EMAIL = "admin@demo.example.com"


class Command(BaseCommand):
    help = (
        "Migrate, create the public tenant and a demo organization with an admin, "
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
        base = f"http://{options['addrport']}"
        self.stdout.write(
            f"\nLog in as {DEMO_ADMIN_EMAIL} / {password}\n\n"
            f"  curl {base}/healthz\n"
            f"  curl -X POST {base}/v1/auth/token -H 'Content-Type: application/json' \\\n"
            f'       -d \'{{"email": "{DEMO_ADMIN_EMAIL}", "password": "{password}"}}\'\n\n'
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
