"""Fleet migrations: every schema (public, portals, spares) brought to the latest migrations.

`migrate_schemas` runs Django's whole `migrate` once per schema, even when nothing is pending:
system checks, a migration loader and graph, a `django_migrations` read, rendering every model
state, a catalog query for the recorder, the post_migrate handlers (about 150 ms a schema). Here:

1. **Scan** (`fleet_scan`): one directory query (the tenant rows, and whether each schema and its
   `django_migrations` table exist), then one catalog query per 200 schemas (a `UNION ALL` over
   their `django_migrations` tables, as `portal_user_counts` batches) that returns only what each
   schema is missing of the full set of migrations on disk. Every schema records every app's
   migrations (the router turns the other side's operations into no-ops), so the full set is the
   whole migration graph, read once with `MigrationLoader` and no database. A schema missing
   nothing is current and costs nothing more.
2. **Plan** (`_plan_prepare`), once per distinct starting state (usually one for the whole fleet):
   the migrations to apply, and for each operation the project states before and after it,
   rendered once. Django's `Migration.apply` clones and re-renders these for every schema; the
   states describe models, not a schema, so one rendering serves them all.
3. **Apply** (`_schema_migrate`), per schema: `set_schema`, then in one transaction each
   operation's `database_forwards` with the prepared states, the `django_migrations` rows and the
   post_migrate handlers (content types), as `migrate` does. A failure rolls that schema back
   whole and the run goes on. With `parallel` > 1, worker processes forked once each take schemas
   from a queue; the parent records every outcome (`PortalMigration`) and sends
   `portal_schema_migrated` for it.

The public schema goes first, in this process: portal schemas (and the outcome table itself) may
depend on its tables, so when it fails nothing else is tried.
"""

import contextlib
import multiprocessing
import os
import signal
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import cast

import psycopg
from django.apps import apps as global_apps
from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
from django.db import connection, transaction
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.migration import Migration
from django.db.migrations.operations.base import Operation
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import ModelState, ProjectState, StateApps
from django.dispatch import Signal
from django.utils import timezone
from django_tenants.utils import get_public_schema_name

from portals.models import Portal, PortalMigration
from portalsite.db import schema_batches, tenant_connection

MigrationKey = tuple[str, str]

# Outcomes written to PortalMigration per statement while a run goes on.
RECORD_BATCH = 200
# Session-level advisory lock: one run at a time per database ("fleet" in ASCII).
_RUN_LOCK_KEY = 0x666C656574

# Sent in the process that called fleet_migrate, once per schema tried, with `outcome` (a SchemaOutcome).
portal_schema_migrated = Signal()


class FleetBusyError(RuntimeError):
    """Another migrate_portals run holds the lock."""


@dataclass(frozen=True)
class FleetSchema:
    schema_name: str
    portal_id: uuid.UUID | None  # None only for a public schema without its tenant row
    kind: str  # "public", "portal" or "spare"
    exists: bool
    has_migrations_table: bool


@dataclass(frozen=True)
class FleetScan:
    """What the catalog says: every schema in scope, and what each behind one is missing."""

    schemas: list[FleetSchema]  # the public schema first
    expected: frozenset[MigrationKey]
    missing: dict[str, frozenset[MigrationKey]]  # behind schemas only (schema name -> missing rows)

    @property
    def public(self) -> FleetSchema | None:
        return next((schema for schema in self.schemas if schema.kind == "public"), None)

    @property
    def current(self) -> list[FleetSchema]:
        return [schema for schema in self.schemas if schema.exists and schema.schema_name not in self.missing]

    @property
    def behind(self) -> list[FleetSchema]:
        return [schema for schema in self.schemas if schema.schema_name in self.missing]

    @property
    def absent(self) -> list[FleetSchema]:
        """Tenant rows whose schema does not exist."""
        return [schema for schema in self.schemas if not schema.exists]

    def groups(self) -> dict[frozenset[MigrationKey], list[FleetSchema]]:
        """Behind schemas by what they are missing, i.e. by starting state (one plan each)."""
        grouped: dict[frozenset[MigrationKey], list[FleetSchema]] = {}
        for schema in self.behind:
            grouped.setdefault(self.missing[schema.schema_name], []).append(schema)
        return grouped


@dataclass(frozen=True)
class SchemaOutcome:
    schema_name: str
    portal_id: uuid.UUID | None
    kind: str
    state: str  # PortalMigration.State.CURRENT or FAILED
    applied: tuple[str, ...]  # "app.name", in order
    error: str
    duration_ms: float
    worker_pid: int
    worker_rss_kib: int  # the process that migrated the schema, right after it


@dataclass
class FleetResult:
    scan: FleetScan
    outcomes: list[SchemaOutcome] = field(default_factory=list)
    not_tried: list[FleetSchema] = field(default_factory=list)  # behind, left pending (the public schema failed)

    @property
    def failed(self) -> list[SchemaOutcome]:
        return [outcome for outcome in self.outcomes if outcome.state == PortalMigration.State.FAILED]

    @property
    def migrated(self) -> list[SchemaOutcome]:
        return [outcome for outcome in self.outcomes if outcome.state == PortalMigration.State.CURRENT]


@dataclass(frozen=True)
class _Step:
    operation: Operation
    before: ProjectState
    after: ProjectState


@dataclass(frozen=True)
class _PlannedMigration:
    migration: Migration
    steps: list[_Step]
    records: list[MigrationKey]  # django_migrations rows it adds (a squash: the ones it replaces, and itself)


@dataclass(frozen=True)
class _Plan:
    """How to bring a schema from one starting state to the latest one."""

    migrations: list[_PlannedMigration] = field(default_factory=list)
    leftover_records: list[MigrationKey] = field(default_factory=list)  # rows missing with nothing to run
    post_apps: StateApps | None = None
    signal_plan: list[tuple[Migration, bool]] = field(default_factory=list)
    atomic: bool = True  # every migration atomic: the whole schema in one transaction
    error: str = ""  # a starting state this command does not handle: each of its schemas fails with it
    state_apps: tuple[StateApps, ...] = ()

    @property
    def names(self) -> list[str]:
        return [f"{planned.migration.app_label}.{planned.migration.name}" for planned in self.migrations]


# Scan ------------------------------------------------------------------------------------------


def fleet_expected_migrations() -> frozenset[MigrationKey]:
    """The `django_migrations` rows of a fully migrated schema: every migration on disk (every app:
    each schema records the other side's migrations too) and the ones squashed migrations replace."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    expected = set(loader.graph.nodes)
    for migration in loader.replacements.values():
        expected.update(migration.replaces)
    return frozenset(expected)


def _directory(*, portal: Portal | None) -> list[FleetSchema]:
    """The public schema, then every tenant row's schema (or `portal`'s), oldest first, with what exists."""
    public = get_public_schema_name()
    table = MigrationRecorder.Migration._meta.db_table
    where, params = "", [table]
    if portal is not None:
        where, params = "WHERE p.schema_name IN (%s, %s)", [table, public, portal.schema_name]
    sql = f"""
        SELECT p.id, p.schema_name, p.is_spare, n.oid IS NOT NULL, c.oid IS NOT NULL
        FROM {connection.ops.quote_name(Portal._meta.db_table)} p
        LEFT JOIN pg_namespace n ON n.nspname = p.schema_name
        LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = %s AND c.relkind = 'r'
        {where}
        ORDER BY p.created_at, p.id
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    schemas = [
        FleetSchema(
            schema_name=schema_name,
            portal_id=portal_id,
            kind="public" if schema_name == public else "spare" if is_spare else "portal",
            exists=exists,
            has_migrations_table=has_table,
        )
        for portal_id, schema_name, is_spare, exists, has_table in rows
    ]
    schemas.sort(key=lambda schema: schema.kind != "public")
    if not any(schema.kind == "public" for schema in schemas):  # before quickstart made its row
        schemas.insert(0, FleetSchema(public, None, "public", exists=True, has_migrations_table=_has_table(public)))
    return schemas


def _has_table(schema_name: str) -> bool:
    table = f"{connection.ops.quote_name(schema_name)}.{MigrationRecorder.Migration._meta.db_table}"
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        return bool(cursor.fetchone()[0])


def fleet_scan(*, portal: Portal | None = None, expected: frozenset[MigrationKey] | None = None) -> FleetScan:
    """Every schema with a tenant row (or only `portal`'s), the public one first, and what each is missing.

    One directory query, then one catalog query per SCHEMAS_PER_STATEMENT schemas; no migration machinery per schema.
    """
    expected = fleet_expected_migrations() if expected is None else expected
    schemas = _directory(portal=portal)
    missing: dict[str, frozenset[MigrationKey]] = {
        schema.schema_name: expected for schema in schemas if schema.exists and not schema.has_migrations_table
    }
    scanned = [schema for schema in schemas if schema.exists and schema.has_migrations_table]
    ordered = sorted(expected)
    apps, names = [app for app, _ in ordered], [name for _, name in ordered]
    table = connection.ops.quote_name(MigrationRecorder.Migration._meta.db_table)
    found: dict[str, set[MigrationKey]] = {}
    for batch in schema_batches(scanned):
        selects = [
            f"SELECT %s, e.app, e.name FROM expected e WHERE NOT EXISTS "  # noqa: S608
            f"(SELECT 1 FROM {connection.ops.quote_name(schema.schema_name)}.{table} m "
            "WHERE m.app = e.app AND m.name = e.name)"
            for schema in batch
        ]
        sql = "WITH expected(app, name) AS (SELECT * FROM unnest(%s::text[], %s::text[])) "
        sql += " UNION ALL ".join(selects)
        with connection.cursor() as cursor:
            cursor.execute(sql, [apps, names, *(schema.schema_name for schema in batch)])
            for schema_name, app, name in cursor.fetchall():
                found.setdefault(schema_name, set()).add((app, name))
    missing.update({schema_name: frozenset(keys) for schema_name, keys in found.items()})
    return FleetScan(schemas=schemas, expected=expected, missing=missing)


# Plan ------------------------------------------------------------------------------------------


def _plan_prepare(*, missing: frozenset[MigrationKey], expected: frozenset[MigrationKey], schema: FleetSchema) -> _Plan:
    """The migrations that bring a schema missing `missing` up to date, with every state rendered once.

    A fresh loader each time: pre_migrate handlers may add operations to the plan's migrations
    (contenttypes inserts a RenameContentType after each RenameModel), as they do once per `migrate`.
    The handlers run with the connection on `schema` (one of the group), where the router decides.
    """
    loader = MigrationLoader(None, ignore_no_migrations=True)
    graph = loader.graph
    applied_rows = expected - missing
    applied = {key for key in applied_rows if key in graph.nodes}
    for key, squash in loader.replacements.items():
        replaced = [replaced_key in applied_rows for replaced_key in squash.replaces]
        if all(replaced):
            applied.add(key)
        elif any(replaced) and key in graph.nodes:
            return _Plan(
                error=f"squashed migration {key[0]}.{key[1]} is partly applied; "
                f"run `manage.py migrate_schemas --schema {schema.schema_name}` for this schema"
            )
    for key in applied:
        for parent in graph.node_map[key].parents:
            if parent not in applied:
                return _Plan(
                    error=f"migration {key[0]}.{key[1]} is applied before its dependency {parent[0]}.{parent[1]}"
                )
    keys: list[MigrationKey] = []
    for target in sorted(graph.leaf_nodes()):
        for key in graph.forwards_plan(target):
            if key not in applied and key not in keys:
                keys.append(key)
    migrations = [graph.nodes[key] for key in keys]
    signal_plan = [(migration, False) for migration in migrations]

    state = graph.make_state(nodes=sorted(applied), at_end=True, real_apps=loader.unmigrated_apps) if applied else (
        ProjectState(real_apps=loader.unmigrated_apps)
    )  # fmt: skip
    state.apps  # noqa: B018  (render every model once, as migrate does before the first migration)
    with _on_schema(schema):
        emit_pre_migrate_signal(0, False, connection.alias, apps=state.apps, plan=signal_plan)

    planned: list[_PlannedMigration] = []
    rendered: list[StateApps] = [state.apps]
    for migration in migrations:
        steps = []
        for operation in migration.operations:
            after = state.clone()
            operation.state_forwards(migration.app_label, after)
            steps.append(_Step(operation=operation, before=state, after=after))
            rendered.append(after.apps)
            state = after
        records = [*migration.replaces, (migration.app_label, migration.name)]
        planned.append(_PlannedMigration(migration=migration, steps=steps, records=records))
    recorded = {key for one in planned for key in one.records}

    # As migrate does for its post_migrate handlers: every model reloaded, real apps' models re-rendered.
    final = state.clone()
    final.clear_delayed_apps_cache()
    post_apps = final.apps
    with post_apps.bulk_update():
        model_keys = []
        for model_state in post_apps.real_models:
            model_key = model_state.app_label, model_state.name_lower
            model_keys.append(model_key)
            post_apps.unregister_model(*model_key)
    post_apps.render_multiple([ModelState.from_model(global_apps.get_model(*model)) for model in model_keys])
    return _Plan(
        migrations=planned,
        leftover_records=sorted(missing - recorded),
        post_apps=post_apps,
        signal_plan=signal_plan,
        atomic=all(migration.atomic for migration in migrations),
        state_apps=(*rendered, post_apps),
    )


@contextlib.contextmanager
def _on_schema(schema: FleetSchema) -> Iterator[None]:
    tenant_connection.set_schema(schema.schema_name)
    try:
        yield
    finally:
        tenant_connection.set_schema_to_public()


# Apply -----------------------------------------------------------------------------------------


def _rss_kib() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # the peak, where /proc is missing


def _clear_content_type_caches(plan: _Plan) -> None:
    """ContentType managers cache rows per database alias, and every schema shares the alias."""
    for state_apps in plan.state_apps:
        try:
            state_apps.get_model("contenttypes", "ContentType").objects.clear_cache()
        except LookupError:
            return


def _apply_migration(planned: _PlannedMigration) -> None:
    """Django's `Migration.apply` with the prepared states, then the migration's rows."""
    migration = planned.migration
    with connection.schema_editor(atomic=migration.atomic) as editor:
        for step in planned.steps:
            operation = step.operation
            atomic_operation = operation.atomic or (migration.atomic and operation.atomic is not False)
            if not editor.atomic_migration and atomic_operation:
                with transaction.atomic(connection.alias):
                    operation.database_forwards(migration.app_label, editor, step.before, step.after)
            else:
                operation.database_forwards(migration.app_label, editor, step.before, step.after)
    _record(planned.records)


def _record(keys: Sequence[MigrationKey]) -> None:
    if keys:
        recorder = MigrationRecorder(connection)
        recorder.migration_qs.bulk_create([recorder.Migration(app=app, name=name) for app, name in keys])


def _schema_migrate(*, schema: FleetSchema, plan: _Plan) -> SchemaOutcome:
    """Apply `plan` to one schema, in one transaction when every migration is atomic; never raises."""
    started = time.perf_counter()
    applied: list[str] = []
    error = plan.error
    if not schema.exists:
        error = f"schema {schema.schema_name} does not exist"
    if not error:
        current = "(recording)"
        try:
            with transaction.atomic() if plan.atomic else contextlib.nullcontext():
                if not schema.has_migrations_table:
                    # As django-tenants does: without public on the path, the recorder creates the table here.
                    tenant_connection.set_schema(schema.schema_name, include_public=False)
                    MigrationRecorder(connection).ensure_schema()
                tenant_connection.set_schema(schema.schema_name)
                _clear_content_type_caches(plan)
                for planned in plan.migrations:
                    current = f"{planned.migration.app_label}.{planned.migration.name}"
                    _apply_migration(planned)
                    applied.append(current)
                current = "(post_migrate)"
                _record(plan.leftover_records)
                emit_post_migrate_signal(0, False, connection.alias, apps=plan.post_apps, plan=plan.signal_plan)
        except Exception as exc:  # reported per schema; the run goes on
            error = f"{current}: {type(exc).__name__}: {str(exc).strip()}"
            if plan.atomic:
                applied = []  # rolled back with the schema's transaction
            if not connection.in_atomic_block and connection.connection is not None and not connection.is_usable():
                connection.close()
        finally:
            tenant_connection.set_schema_to_public()
    return SchemaOutcome(
        schema_name=schema.schema_name,
        portal_id=schema.portal_id,
        kind=schema.kind,
        state=PortalMigration.State.FAILED if error else PortalMigration.State.CURRENT,
        applied=tuple(applied),
        error=error,
        duration_ms=(time.perf_counter() - started) * 1000,
        worker_pid=os.getpid(),
        worker_rss_kib=_rss_kib(),
    )


# Recording -------------------------------------------------------------------------------------


def portal_migrations_record(*, outcomes: Sequence[SchemaOutcome]) -> None:
    """Write each outcome to its PortalMigration row (rows of tenants deleted in the meantime are skipped)."""
    with_rows = [outcome for outcome in outcomes if outcome.portal_id is not None]
    existing = set(Portal.objects.filter(pk__in=[o.portal_id for o in with_rows]).values_list("pk", flat=True))
    now = timezone.now()
    rows = {
        state: [
            PortalMigration(
                portal_id=outcome.portal_id,
                state=state,
                last_applied=outcome.applied[-1] if outcome.applied else "",
                error=outcome.error,
                duration_ms=round(outcome.duration_ms, 3),
                finished_at=now,
            )
            for outcome in with_rows
            if outcome.state == state and outcome.portal_id in existing
        ]
        for state in (PortalMigration.State.CURRENT, PortalMigration.State.FAILED)
    }
    fields = ["state", "error", "duration_ms", "finished_at"]
    for state, update_fields in ((PortalMigration.State.CURRENT, [*fields, "last_applied"]),
                                 (PortalMigration.State.FAILED, fields)):  # fmt: skip
        if rows[state]:
            PortalMigration.objects.bulk_create(
                rows[state], update_conflicts=True, unique_fields=["portal"], update_fields=update_fields
            )


def portal_migrations_mark(*, schemas: Sequence[FleetSchema], state: str) -> None:
    """Set `state` on the schemas' rows where it differs, creating missing rows (`current` also clears the error)."""
    ids = [schema.portal_id for schema in schemas if schema.portal_id is not None]
    if not ids:
        return
    existing = dict(PortalMigration.objects.filter(portal_id__in=ids).values_list("portal_id", "state"))
    changed = [pk for pk in ids if existing.get(pk) != state]
    if not changed:
        return
    extra = {"error": ""} if state == PortalMigration.State.CURRENT else {}
    PortalMigration.objects.filter(portal_id__in=[pk for pk in changed if pk in existing]).update(state=state, **extra)
    PortalMigration.objects.bulk_create(
        [PortalMigration(portal_id=pk, state=state) for pk in changed if pk not in existing], ignore_conflicts=True
    )


# The run ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _run_lock() -> Iterator[None]:
    """One run per database, held on a connection of its own: worker processes are forked with Django's closed."""
    params = connection.get_connection_params()
    lock_connection = connection.get_new_connection(params)
    lock_connection.autocommit = True
    try:
        (locked,) = lock_connection.execute("SELECT pg_try_advisory_lock(%s)", [_RUN_LOCK_KEY]).fetchone()
        if not locked:
            raise FleetBusyError("another migrate_portals run is under way on this database")
        try:
            yield
        finally:
            # Released before closing: a closed session's locks go only once its backend has exited, which
            # a run starting right after this one could beat. A broken connection frees it by closing.
            with contextlib.suppress(psycopg.Error):
                lock_connection.execute("SELECT pg_advisory_unlock(%s)", [_RUN_LOCK_KEY])
    finally:
        lock_connection.close()


class _Recorder:
    """Outcomes from wherever they were made: signal, keep, write to PortalMigration in batches.

    The table lives in the public schema, which may be the schema being migrated: until it exists
    (the first run after its migration lands, or a public schema that failed before creating it),
    outcomes are reported but not written.
    """

    def __init__(self, result: FleetResult, *, table_exists: bool) -> None:
        self.result = result
        self.unwritten: list[SchemaOutcome] = []
        self._table_exists = table_exists

    def writable(self) -> bool:
        if not self._table_exists:
            quote = connection.ops.quote_name
            table = f"{quote(get_public_schema_name())}.{quote(PortalMigration._meta.db_table)}"
            with connection.cursor() as cursor:
                cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
                self._table_exists = bool(cursor.fetchone()[0])
        return self._table_exists

    def add(self, outcome: SchemaOutcome) -> None:
        self.result.outcomes.append(outcome)
        self.unwritten.append(outcome)
        portal_schema_migrated.send(sender=fleet_migrate, outcome=outcome)
        if len(self.unwritten) >= RECORD_BATCH:
            self.flush()

    def flush(self) -> None:
        if self.unwritten and self.writable():
            portal_migrations_record(outcomes=self.unwritten)
        self.unwritten = []

    def mark(self, *, schemas: Sequence[FleetSchema], state: str) -> None:
        if schemas and self.writable():
            portal_migrations_mark(schemas=schemas, state=state)


def fleet_migrate(*, scan: FleetScan, parallel: int = 1) -> FleetResult:
    """Migrate every behind schema of `scan`: the public one first (here), then the rest in `parallel`
    processes (forked; this process when 1, or when one schema is left). Each schema's outcome is
    recorded in PortalMigration and sent as `portal_schema_migrated`.

    Raises FleetBusyError while another run holds the lock. With `parallel` > 1 the caller's
    connection must not be inside a transaction (it is closed before forking).
    """
    if parallel < 1:
        raise ValueError("parallel must be at least 1")
    result = FleetResult(scan=scan)
    public = scan.public
    # A current public schema has every public migration applied, this table's included.
    recorder = _Recorder(result, table_exists=public is not None and public.schema_name not in scan.missing)
    with _run_lock():
        connection.prepare_database()
        groups = scan.groups()
        if public is not None and public.schema_name in scan.missing:
            missing = scan.missing[public.schema_name]
            plan = _plan_prepare(missing=missing, expected=scan.expected, schema=public)
            outcome = _schema_migrate(schema=public, plan=plan)
            recorder.add(outcome)
            groups[missing] = [schema for schema in groups[missing] if schema.kind != "public"]
            if not groups[missing]:
                del groups[missing]
            recorder.flush()
            if outcome.state == PortalMigration.State.FAILED:
                result.not_tried = [schema for schema in scan.behind if schema.kind != "public"]
                recorder.mark(schemas=result.not_tried, state=PortalMigration.State.PENDING)
                return result
        recorder.mark(schemas=scan.current, state=PortalMigration.State.CURRENT)
        for schema in scan.absent:
            recorder.add(_schema_migrate(schema=schema, plan=_Plan()))
        work = [(schema, missing) for missing, schemas in groups.items() for schema in schemas]
        if not work:
            recorder.flush()
            return result
        recorder.mark(schemas=[schema for schema, _ in work], state=PortalMigration.State.MIGRATING)
        plans = {missing: _plan_prepare(missing=missing, expected=scan.expected, schema=schemas[0])
                 for missing, schemas in groups.items()}  # fmt: skip
        tasks = [(schema, plans[missing]) for schema, missing in work]
        try:
            if parallel == 1 or len(tasks) == 1:
                for schema, plan in tasks:
                    recorder.add(_schema_migrate(schema=schema, plan=plan))
            else:
                _run_in_workers(tasks=tasks, processes=min(parallel, len(tasks)), recorder=recorder)
        except BaseException:
            recorder.flush()
            done = {outcome.schema_name for outcome in result.outcomes}
            recorder.mark(
                schemas=[schema for schema, _ in tasks if schema.schema_name not in done],
                state=PortalMigration.State.PENDING,
            )
            raise
        recorder.flush()
    return result


# Worker processes ------------------------------------------------------------------------------


def _worker(conn: Connection, work: list[tuple[FleetSchema, _Plan]]) -> None:
    """A forked process: Django, the plans and their rendered states come from the parent, set up once.
    It takes one schema at a time from the parent and answers each with its outcome."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops the workers
    try:
        while (index := conn.recv()) is not None:
            schema, plan = work[index]
            conn.send(_schema_migrate(schema=schema, plan=plan))
    finally:
        connection.close()


def _run_in_workers(*, tasks: list[tuple[FleetSchema, _Plan]], processes: int, recorder: _Recorder) -> None:
    """Hand out schemas one at a time to `processes` forked workers. The parent knows which schema each
    worker holds, so a worker that dies (killed for memory, say) fails that schema only; the others
    take the rest."""
    if connection.in_atomic_block:
        raise RuntimeError("parallel workers need autocommit: the connection is closed before they are forked")
    connection.close()  # the workers must not share its socket; it reconnects on the next query
    context = multiprocessing.get_context("fork")  # workers inherit the prepared plans and the settings
    workers: dict[Connection, multiprocessing.process.BaseProcess] = {}
    for _ in range(processes):
        parent_end, child_end = context.Pipe()
        process = context.Process(target=_worker, args=(child_end, tasks), daemon=True)
        process.start()
        child_end.close()
        workers[parent_end] = process
    waiting = list(range(len(tasks) - 1, -1, -1))  # popped from the end: in order
    holding: dict[Connection, int] = {}

    def hand_out(conn: Connection) -> None:
        try:
            if waiting:
                holding[conn] = waiting.pop()
                conn.send(holding[conn])
            else:
                conn.send(None)
        except OSError:  # it died after its last answer: the sentinel says so; the schema goes back
            if conn in holding:
                waiting.append(holding.pop(conn))

    def bury(conn: Connection) -> None:
        process = workers.pop(conn)
        process.join(timeout=10)
        if conn in holding:
            index = holding.pop(conn)
            error = f"worker process {process.pid} died (exit code {process.exitcode})"
            recorder.add(_failed(tasks[index][0], error))
        conn.close()

    try:
        for conn in list(workers):
            hand_out(conn)
        while workers:
            sentinels = {process.sentinel: conn for conn, process in workers.items()}
            for ready in wait([*workers, *sentinels], timeout=5):
                conn = sentinels[ready] if isinstance(ready, int) else cast(Connection, ready)
                if conn not in workers:
                    continue  # buried already through its other handle
                if ready in sentinels and not conn.poll():
                    bury(conn)
                    continue
                try:
                    outcome = conn.recv()
                except EOFError:
                    bury(conn)
                    continue
                holding.pop(conn, None)
                recorder.add(outcome)
                hand_out(conn)
        for index in reversed(waiting):  # every worker died with schemas left
            recorder.add(_failed(tasks[index][0], "not tried: every worker process died"))
    finally:
        for conn, worker in workers.items():
            worker.terminate()  # interrupted: an open transaction dies with its connection, the schema untouched
            worker.join(timeout=10)
            conn.close()


def _failed(schema: FleetSchema, error: str) -> SchemaOutcome:
    return SchemaOutcome(
        schema_name=schema.schema_name, portal_id=schema.portal_id, kind=schema.kind,
        state=PortalMigration.State.FAILED, applied=(), error=error, duration_ms=0.0, worker_pid=0, worker_rss_kib=0,
    )  # fmt: skip
