import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django_tenants.utils import tenant_context

from customer_portal.api.serializers import PortalStatsOutput
from customer_portal.selectors import portal_stats
from portals.cli import portal_argument


class Command(BaseCommand):
    help = "Show one portal's counts of users, invitations, sessions, logins and features, as GET /stats does."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("portal", help="portal id or slug")
        parser.add_argument("--json", action="store_true", help="the PortalStats body of GET /v1/customer-portal/stats")

    def handle(self, *args: Any, **options: Any) -> None:
        portal = portal_argument(options["portal"])
        with tenant_context(portal):
            stats = PortalStatsOutput(portal_stats()).data
        if options["json"]:
            self.stdout.write(json.dumps(stats, indent=2))
            return
        users, invitations, logins, features = (stats[key] for key in ("users", "invitations", "logins", "features"))
        lines = [
            f"Portal {portal.slug} ({portal.name})",
            f"  users        {users['total']} total: {users['active']} active, {users['invited']} invited, "
            f"{users['revoked']} revoked",
            f"  invitations  {invitations['pending']} pending, {invitations['accepted']} accepted, "
            f"{invitations['expired']} expired, {invitations['revoked']} revoked",
            f"  sessions     {stats['sessions']['active']} active",
            f"  logins       {logins['last_24h']} in 24h, {logins['last_7d']} in 7d, {logins['last_30d']} in 30d",
            f"  features     {features['enabled']} of {features['total']} enabled",
        ]
        self.stdout.write("\n".join(lines))
