import csv
from pathlib import Path
from typing import Any, cast

from django.core.management.base import CommandError, CommandParser
from django_tenants.utils import tenant_context

from customer_portal.invite_rows import INVITE_COLUMNS, InviteEntry, invite_rows_check
from customer_portal.selectors import portal_settings_get
from customer_portal.services import InviteOutcome, portal_users_invite
from events.commands import OperatorCommand
from portals.cli import portal_argument
from portals.models import Portal
from portalsite.errors import ApplicationError
from portalsite.progress import progress_bar

BATCH_SIZE = 500


class Command(OperatorCommand):
    help = (
        "Invite people to a portal from a CSV file with the header email,name,role (name and role optional; "
        "role member or manager). Checks every row first and writes nothing when one is bad."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("portal", help="portal id or slug")
        parser.add_argument("--csv", required=True, type=Path, help="the CSV file")
        parser.add_argument("--no-email", action="store_true", help="send no invitation or access e-mails")

    def handle(self, *args: Any, **options: Any) -> None:
        portal = portal_argument(options["portal"])
        rows = self._read_csv(options["csv"])
        with tenant_context(portal):
            allowed_domains = portal_settings_get().allowed_email_domains
        checked = invite_rows_check(rows, allowed_domains=allowed_domains)
        if checked.errors:
            for error in checked.errors:
                self.stderr.write(error)
            raise CommandError(f"{len(checked.errors)} bad row(s) in {options['csv']}; nothing was invited")
        if not checked.entries:
            raise CommandError(f"{options['csv']} has no rows to invite")
        if checked.repeated:
            self.stderr.write(f"Skipped {checked.repeated} row(s) repeating an earlier e-mail")
        outcome = self._invite(portal=portal, entries=checked.entries, send_email=not options["no_email"])
        self.stdout.write(
            self.style.SUCCESS(
                f"invited {outcome.count('invited')}, linked {outcome.count('linked')}, "
                f"already member {outcome.count('already_member')}"
            )
        )

    def _read_csv(self, path: Path) -> list[tuple[str, list[str]]]:
        """("line N", [email, name, role, values beyond the header...]) per row; the header is line 1."""
        try:
            # utf-8-sig: spreadsheet exports often start with a byte-order mark.
            with path.open(newline="", encoding="utf-8-sig") as file:
                reader = csv.DictReader(file)
                header = [(column or "").strip().lower() for column in reader.fieldnames or []]
                if "email" not in header:
                    raise CommandError(f"{path} needs a header line with an email column (email,name,role)")
                unknown = [column for column in header if column not in INVITE_COLUMNS]
                if unknown:
                    raise CommandError(
                        f"{path} has unknown column(s) {', '.join(map(repr, unknown))}; expected email,name,role"
                    )
                reader.fieldnames = header
                # DictReader's key None holds the values beyond the header.
                rows = []
                for row in reader:
                    beyond = cast(list[str], row.get(None) or [])  # DictReader's key None holds the extras
                    values = [row.get(column) or "" for column in INVITE_COLUMNS] + beyond
                    rows.append((f"line {reader.line_num}", values))
                return rows
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror or exc}") from exc
        except (UnicodeDecodeError, csv.Error) as exc:
            raise CommandError(f"{path} is not a readable UTF-8 CSV file: {exc}") from exc

    def _invite(self, *, portal: Portal, entries: list[InviteEntry], send_email: bool) -> InviteOutcome:
        outcome = InviteOutcome()
        with (
            tenant_context(portal),
            progress_bar(None, stream=self.stderr, unit="user", total=len(entries)) as progress,
        ):
            # One transaction per batch: a large file never holds the portal's invite lock for long.
            for start in range(0, len(entries), BATCH_SIZE):
                batch = entries[start : start + BATCH_SIZE]
                try:
                    result = portal_users_invite(portal=portal, entries=batch, invited_by=None, send_email=send_email)
                except ApplicationError as exc:
                    raise CommandError(f"{exc.message} (the first {start} row(s) were already invited)") from exc
                outcome.results += result.results
                progress.update(len(batch))
        return outcome
