import contextlib
import ctypes
import os
import secrets
import signal
import subprocess
import sys
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError, CommandParser
from django_tenants.utils import tenant_context

from accounts.models import Organization
from accounts.services import organization_create
from customer_portal.invite_rows import InviteEntry
from customer_portal.models import PortalUser
from customer_portal.services import portal_users_invite
from events.commands import OperatorCommand
from portals.models import Portal, portal_host
from portals.provisioning import spare_pool_refill
from portals.selectors import portal_get_by_ref
from portals.services import portal_create
from portalsite.errors import ApplicationError

DEMO_ORG_NAME = "Demo Organization"
DEMO_ADMIN_EMAIL = "admin@demo.example.com"
DEMO_PORTAL_NAME = "Demo Portal"
DEMO_PORTAL_SLUG = "demo"
DEMO_GUEST_EMAIL = "guest@demo.example.com"


class Command(OperatorCommand):
    help = (
        "Migrate, create the public tenant, a demo organization with an admin and a demo portal with one "
        "invited guest, print how to call the API, then serve, with one background worker beside the server "
        "(it delivers the guest's invitation)."
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
        portal = self._demo_portal()
        self._demo_guest(portal)
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
            + (
                f"\nThe invitation to {DEMO_GUEST_EMAIL} waits for a worker: `python manage.py worker` delivers it.\n"
                if options["no_serve"]
                else f"\nThe worker beside the server delivers the invitation to {DEMO_GUEST_EMAIL} (below, with the "
                "console e-mail backend): open its link to join the demo portal.\n"
            )
        )
        if not options["no_serve"]:
            self._serve(addrport=options["addrport"], port=port)

    def _serve(self, *, addrport: str, port: str) -> None:
        """runserver, with a worker beside it that delivers the e-mails and runs the other jobs."""
        if "PORTAL_URL_PORT" not in os.environ:
            # E-mailed links must reach the port served here, not the default 8000.
            settings.PORTAL_URL_PORT = port
        worker = _start_worker(link_port=settings.PORTAL_URL_PORT)
        self.stdout.write(f"Background worker started (pid {worker.pid}); e-mails it sends are printed here.\n")
        try:
            # No autoreloader: it would re-run this whole command in a child process.
            call_command("runserver", addrport, use_reloader=False)
        finally:
            _stop_worker(worker)

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

    def _demo_portal(self) -> Portal:
        """Create the demo portal once, for the demo org; later runs leave it alone."""
        # A full pool makes this create, and the first ones made through the API, take milliseconds.
        spare_pool_refill()
        portal = portal_get_by_ref(ref=DEMO_PORTAL_SLUG)
        if portal is not None:
            self.stdout.write(self.style.SUCCESS(f"{DEMO_PORTAL_NAME} ({DEMO_PORTAL_SLUG}) already exists."))
            return portal
        organization = Organization.objects.get(name=DEMO_ORG_NAME)
        try:
            portal = portal_create(
                organization=organization, created_by=None, name=DEMO_PORTAL_NAME, slug=DEMO_PORTAL_SLUG
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(f"Created {DEMO_PORTAL_NAME} at {portal_host(DEMO_PORTAL_SLUG)}."))
        return portal

    def _demo_guest(self, portal: Portal) -> None:
        """Invite a demo guest once (its e-mail is a job for the worker); later runs leave it alone."""
        with tenant_context(portal):
            if PortalUser.objects.filter(email__iexact=DEMO_GUEST_EMAIL).exists():
                return
            portal_users_invite(
                portal=portal, entries=[InviteEntry(email=DEMO_GUEST_EMAIL, name="Demo Guest")], invited_by=None
            )
        self.stdout.write(self.style.SUCCESS(f"Invited {DEMO_GUEST_EMAIL} to {DEMO_PORTAL_NAME}."))


def _start_worker(*, link_port: str) -> subprocess.Popen[bytes]:
    """`manage.py worker` as a child process that ends with this one, however this one ends."""
    env = {**os.environ, "PORTAL_URL_PORT": link_port}
    return subprocess.Popen(  # noqa: S603 (our own interpreter and manage.py)
        [sys.executable, str(settings.BASE_DIR / "manage.py"), "worker"],
        env=env,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux for a SIGTERM when the parent dies (even by SIGKILL), so a
    killed quickstart leaves no worker behind. The worker treats it as any SIGTERM: it finishes its jobs."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)  # it finishes the jobs it holds, then exits
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.wait(timeout=5)
