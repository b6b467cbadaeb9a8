import json
from collections.abc import Sequence
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from accounts.cli import organization_argument
from customer_portal.selectors import portal_user_counts
from portals.api.serializers import PortalOutput
from portals.models import PortalMigration
from portals.selectors import portal_list_all, portal_migration_outcomes

COLUMNS = ("id", "slug", "name", "organization", "domain", "custom domain", "users", "migrations")


class Command(BaseCommand):
    help = "List portals (all, or one organization's) as a table, or as JSON shaped like GET /v1/portal."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", help="only this organization's portals (id or slug)")
        parser.add_argument("--json", action="store_true", help="a JSON list of PortalResponse objects")

    def handle(self, *args: Any, **options: Any) -> None:
        organization_id = None
        if options["org"] is not None:
            organization = organization_argument(options["org"])
            organization_id = organization.id
        portals = list(portal_list_all(organization_id=organization_id))
        rows = PortalOutput(portals, many=True, context={"user_counts": portal_user_counts(portals=portals)}).data
        migrations = portal_migration_outcomes(portals=portals)
        if options["json"]:
            listed = [
                {**row, "migration": _migration_json(migrations.get(portal.id))}
                for row, portal in zip(rows, portals, strict=True)
            ]
            self.stdout.write(json.dumps(listed, indent=2))
            return
        # portal_list_all lists real portals only: each has its organization.
        organizations = {str(portal.id): portal.organization.slug for portal in portals if portal.organization}
        table = [
            (
                str(row["id"]),
                str(row["slug"]),
                str(row["name"]),
                organizations[row["id"]],
                str(row["domain"]),
                f"{row['custom_domain']} ({row['custom_domain_status']})" if row["custom_domain"] else "-",
                str(row["user_count"]),
                migrations[portal.id].state if portal.id in migrations else "-",
            )
            for row, portal in zip(rows, portals, strict=True)
        ]
        self._write_table(table)

    def _write_table(self, table: Sequence[tuple[str, ...]]) -> None:
        widths = [max([len(column)] + [len(row[index]) for row in table]) for index, column in enumerate(COLUMNS)]
        for row in [COLUMNS, *table]:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if not table:
            self.stderr.write("No portals.")


def _migration_json(outcome: PortalMigration | None) -> dict[str, Any] | None:
    """The portal's last migrate_portals outcome (null before its first run)."""
    if outcome is None:
        return None
    return {
        "state": outcome.state,
        "last_applied": outcome.last_applied or None,
        "error": outcome.error or None,
        "duration_ms": outcome.duration_ms,
        "finished_at": outcome.finished_at.isoformat() if outcome.finished_at else None,
    }
