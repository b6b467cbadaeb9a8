import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portals.fleet import FleetBusyError, FleetScan, SchemaOutcome, fleet_migrate, fleet_scan, portal_schema_migrated
from portals.models import Portal
from portals.selectors import portal_get_by_ref
from portalsite.progress import progress_bar


class Command(BaseCommand):
    help = (
        "Bring every schema (public, portals, spares) to the latest migrations. One catalog query finds the "
        "schemas already current, which are skipped; the plan is computed once and applied to the rest by "
        "--parallel processes, each schema in its own transaction. A failing schema is rolled back and "
        "reported, the others go on (exit status 1 names the failures; run again to retry only those). "
        "The public schema is migrated first, in this process, when it is behind: portal schemas, their "
        "migrations and the outcome records may depend on its tables, so one command is the whole deploy "
        "step; if it fails, nothing else is tried. Use migrate_schemas for anything else (one app, a target "
        "migration, unapplying, --fake)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--parallel", type=int, default=1, metavar="N", help="worker processes (default 1: this process)"
        )
        parser.add_argument("--portal", help="only this portal's schema (id or slug), after the public one")
        parser.add_argument("--plan", action="store_true", help="only show what would run; writes nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["parallel"] < 1:
            raise CommandError("--parallel must be at least 1")
        portal = None
        if options["portal"] is not None:
            portal = portal_get_by_ref(ref=options["portal"])
            if portal is None:
                raise CommandError(f"No portal {options['portal']!r}")
        verbosity = options["verbosity"]
        scan = fleet_scan(portal=portal)
        if verbosity >= 1 or options["plan"]:
            self._summary(scan)
        if options["plan"]:
            self._plan(scan)
            return
        started = time.perf_counter()
        with progress_bar(None, stream=self.stderr, unit="schema", total=len(scan.behind) + len(scan.absent)) as bar:

            def report(*, outcome: SchemaOutcome, **kwargs: Any) -> None:
                bar.update(1)
                if verbosity >= 2:
                    self.stdout.write(_outcome_line(outcome))

            portal_schema_migrated.connect(report, dispatch_uid="migrate_portals")
            try:
                result = fleet_migrate(scan=scan, parallel=options["parallel"])
            except FleetBusyError as exc:
                raise CommandError(str(exc)) from exc
            finally:
                portal_schema_migrated.disconnect(dispatch_uid="migrate_portals")
        seconds = time.perf_counter() - started
        applied = sorted({name for outcome in result.migrated for name in outcome.applied})
        if result.outcomes and verbosity >= 1:
            self.stdout.write(
                f"Migrated {len(result.migrated)} schema(s) in {seconds:.1f} s"
                + (f" (applied {', '.join(applied)})" if applied else "")
            )
        for outcome in result.failed:
            self.stderr.write(f"FAILED {outcome.schema_name}: {outcome.error}")
        if result.not_tried:
            self.stderr.write(
                f"The public schema failed, so {len(result.not_tried)} other schema(s) were not tried (left pending)."
            )
        if result.failed:
            names = ", ".join(sorted(outcome.schema_name for outcome in result.failed))
            raise CommandError(f"{len(result.failed)} schema(s) failed: {names}")

    def _summary(self, scan: FleetScan) -> None:
        public = scan.public
        if public is not None:
            behind = scan.missing.get(public.schema_name)
            self.stdout.write(f"public schema: {'current' if not behind else f'{len(behind)} migration(s) behind'}")
        others = [schema for schema in scan.schemas if schema.kind != "public"]
        behind_count = sum(1 for schema in scan.behind if schema.kind != "public")
        absent = f", {len(scan.absent)} without a schema" if scan.absent else ""
        self.stdout.write(
            f"{len(others)} portal and spare schema(s): {len(others) - behind_count - len(scan.absent)} current, "
            f"{behind_count} behind{absent}"
        )

    def _plan(self, scan: FleetScan) -> None:
        slugs = dict(Portal.objects.filter(pk__in=[s.portal_id for s in scan.behind]).values_list("pk", "slug"))
        for number, (missing, schemas) in enumerate(scan.groups().items(), start=1):
            rows = ", ".join(f"{app}.{name}" for app, name in sorted(missing))
            self.stdout.write(f"plan {number}: {len(schemas)} schema(s) missing {rows}")
            for schema in schemas:
                slug = slugs.get(schema.portal_id, "-") if schema.portal_id else "-"
                self.stdout.write(f"  {schema.schema_name} ({schema.kind} {slug})")
        for schema in scan.absent:
            self.stdout.write(f"no schema: {schema.schema_name} (its tenant row has none; it will be reported)")


def _outcome_line(outcome: SchemaOutcome) -> str:
    if outcome.error:
        return f"{outcome.schema_name}: failed ({outcome.duration_ms:.0f} ms): {outcome.error}"
    return f"{outcome.schema_name}: migrated ({outcome.duration_ms:.0f} ms): {', '.join(outcome.applied) or '-'}"
