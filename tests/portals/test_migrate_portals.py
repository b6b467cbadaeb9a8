"""migrate_portals: schemas end exactly as a freshly migrated one, failures stay per schema, no-ops cost nothing.

No migration is added to the app: each test writes throwaway customer_portal migrations into a package
of its own (copies of the real ones, then the test's) and points MIGRATION_MODULES at it. Most tests
run in this process inside the test's transaction, so their schema changes roll back with it; the
one that runs real worker processes commits, and rolls its migrations back with migrate_schemas.
"""

import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from importlib import import_module
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.test.utils import CaptureQueriesContext, override_settings
from django_tenants.utils import schema_context

from customer_portal.models import PortalSettings
from portals import fleet
from portals.fleet import SchemaOutcome, portal_schema_migrated
from portals.models import Portal, PortalMigration
from portals.provisioning import schema_drop, spare_schema_create
from portals.services import portal_delete
from tests.conftest import make_portal
from tests.portals.test_provisioning import _catalog

APP = "customer_portal"
FIELD = "0901_fleet_note"
DATA = "0902_fleet_data"
CHECK = "0903_fleet_check"
SQUASH = "0901_squashed_0902_fleet"
DIE = "0904_fleet_die"
PUBLIC_FAILS = "0901_fleet_public_fails"  # a portals (shared app) migration: it runs in the public schema only
MIGRATIONS = {
    FIELD: """
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = {dependencies!r}
    operations = [
        migrations.AddField("portalsettings", "fleet_note", models.CharField(max_length=100, null=True, db_index=True)),
        migrations.AddIndex(
            "portalsettings", models.Index(fields=["fleet_note", "updated_at"], name="cp_fleet_note_idx")
        ),
    ]
""",
    DATA: """
from django.db import migrations


def forwards(apps, schema_editor):
    settings = apps.get_model("customer_portal", "PortalSettings").objects.get(id=1)
    settings.fleet_note = "note: " + (settings.display_name or "unnamed")
    settings.save(update_fields=["fleet_note"])
    apps.get_model("customer_portal", "Feature").objects.create(key="fleet", enabled=True)


def backwards(apps, schema_editor):
    apps.get_model("customer_portal", "Feature").objects.filter(key="fleet").delete()


class Migration(migrations.Migration):
    dependencies = {dependencies!r}
    operations = [migrations.RunPython(forwards, backwards)]
""",
    SQUASH: """
from django.db import migrations, models


def forwards(apps, schema_editor):
    settings = apps.get_model("customer_portal", "PortalSettings").objects.get(id=1)
    settings.fleet_note = "note: " + (settings.display_name or "unnamed")
    settings.save(update_fields=["fleet_note"])
    apps.get_model("customer_portal", "Feature").objects.create(key="fleet", enabled=True)


class Migration(migrations.Migration):
    replaces = [("customer_portal", "0901_fleet_note"), ("customer_portal", "0902_fleet_data")]
    dependencies = {dependencies!r}
    operations = [
        migrations.AddField("portalsettings", "fleet_note", models.CharField(max_length=100, null=True, db_index=True)),
        migrations.AddIndex(
            "portalsettings", models.Index(fields=["fleet_note", "updated_at"], name="cp_fleet_note_idx")
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
""",
    PUBLIC_FAILS: """
from django.db import migrations


def forwards(apps, schema_editor):
    raise RuntimeError("the public schema's migration failed")


class Migration(migrations.Migration):
    dependencies = {dependencies!r}
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
""",
    DIE: """
import os

from django.db import migrations


def forwards(apps, schema_editor):
    if apps.get_model("customer_portal", "PortalSettings").objects.get(id=1).welcome_message == "die":
        os._exit(3)  # the worker process dies mid-migration, as an out-of-memory kill would end it


class Migration(migrations.Migration):
    dependencies = {dependencies!r}
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
""",
    CHECK: """
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = {dependencies!r}
    operations = [
        migrations.AddConstraint(
            "portalsettings",
            models.CheckConstraint(condition=~models.Q(welcome_message="forbidden"), name="cp_not_forbidden"),
        ),
    ]
""",
}


@pytest.fixture
def throwaway(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """`throwaway(FIELD, CHECK)` makes those migrations (in that order, after the app's latest) the app's."""
    packages: list[str] = []
    overrides: list[Any] = []

    def make(*names: str, app: str = APP) -> str:
        leaf = MigrationLoader(None, ignore_no_migrations=True).graph.leaf_nodes(app)
        package = f"fleet_migrations_{uuid.uuid4().hex[:10]}"
        folder = tmp_path / package
        folder.mkdir()
        source = Path(import_module(f"{app}.migrations").__file__).parent  # type: ignore[arg-type]
        for file in source.glob("*.py"):
            shutil.copy(file, folder / file.name)
        dependencies = list(leaf)
        for name in names:
            if name == SQUASH:  # it replaces the ones before it, so it starts where they start
                (folder / f"{name}.py").write_text(MIGRATIONS[name].format(dependencies=list(leaf)))
                continue
            (folder / f"{name}.py").write_text(MIGRATIONS[name].format(dependencies=dependencies))
            dependencies = [(APP, name)]
        packages.append(package)
        override = override_settings(MIGRATION_MODULES={**settings.MIGRATION_MODULES, app: package})
        override.enable()
        overrides.append(override)
        return package

    sys.path.insert(0, str(tmp_path))
    try:
        yield make
    finally:
        for override in reversed(overrides):
            override.disable()
        sys.path.remove(str(tmp_path))
        for module in [name for name in sys.modules if name.split(".")[0] in packages]:
            del sys.modules[module]


def _run(*args: str, **options: Any) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("migrate_portals", *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def _tenant_schemas() -> list[str]:
    tenants = Portal.objects.exclude(schema_name="public").order_by("schema_name")
    return list(tenants.values_list("schema_name", flat=True))


def _fresh(name: str = "fleet_fresh") -> dict[str, Any]:
    Portal(schema_name=name).create_schema(verbosity=0)  # django-tenants' own path: migrate_schemas for one schema
    return _catalog(name)


def _applied(schema: str) -> set[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT app, name FROM {connection.ops.quote_name(schema)}.django_migrations")  # noqa: S608
        return set(cursor.fetchall())


def _welcome(portal: Portal, message: str) -> None:
    with schema_context(portal.schema_name):
        PortalSettings.objects.filter(id=1).update(welcome_message=message)


@pytest.fixture
def outcomes() -> Iterator[list[SchemaOutcome]]:
    seen: list[SchemaOutcome] = []

    def receive(*, outcome: SchemaOutcome, **kwargs: Any) -> None:
        seen.append(outcome)

    portal_schema_migrated.connect(receive, dispatch_uid="test_migrate_portals")
    yield seen
    portal_schema_migrated.disconnect(dispatch_uid="test_migrate_portals")


@pytest.mark.django_db
def test_a_no_op_run_skips_every_schema_after_one_catalog_query(
    session_admin, spare_pool, test_portal, monkeypatch, outcomes
):
    make_portal(session_admin, name="Extra", slug="fleet-extra")
    _run()  # the first run records every schema as current
    loaders, schemas_set = [], []
    build_graph = MigrationLoader.build_graph
    monkeypatch.setattr(MigrationLoader, "build_graph", lambda self: loaders.append(1) or build_graph(self))
    set_schema = connection.set_schema
    monkeypatch.setattr(connection, "set_schema", lambda *a, **k: schemas_set.append(a) or set_schema(*a, **k))

    with CaptureQueriesContext(connection) as queries:
        out, _ = _run()

    schemas = _tenant_schemas()
    assert out.splitlines() == [
        "public schema: current",
        f"{len(schemas)} portal and spare schema(s): {len(schemas)} current, 0 behind",
    ]
    # One loader for the full set of migrations (no database), no schema visited, no plan made.
    assert (len(loaders), schemas_set, outcomes) == (1, [], [])
    # The tenant directory, the catalog query (one per 200 schemas), the outcome rows (already current).
    assert len(queries) == 3, [query["sql"][:80] for query in queries]
    assert "django_migrations" in queries[1]["sql"]
    recorded = dict(PortalMigration.objects.values_list("portal__schema_name", "state"))
    assert recorded == {schema: "current" for schema in [*schemas, "public"]}


@pytest.mark.django_db
def test_add_field_and_index_reach_every_portal_and_spare_as_a_fresh_schema_has_them(
    spare_pool, test_portal, throwaway, outcomes
):
    throwaway(FIELD)
    schemas = _tenant_schemas()
    assert any(schema.startswith("spare_") for schema in schemas) and test_portal.schema_name in schemas

    out, _ = _run("-v", "2")

    fresh = _fresh()
    for schema in schemas:
        assert _catalog(schema) == fresh, schema
    assert ("cp_fleet_note_idx",) in [(row[0],) for row in fresh["indexes"]]
    assert any("fleet_note" in row[1] and "_like" not in row[0] for row in fresh["indexes"])
    assert (APP, FIELD) in _applied("public")  # the public schema records it too (its operations are no-ops there)
    assert {outcome.schema_name for outcome in outcomes} == {"public", *schemas}
    assert all(outcome.applied == (f"{APP}.{FIELD}",) for outcome in outcomes)
    assert f"Migrated {len(schemas) + 1} schema(s)" in out
    rows = PortalMigration.objects.filter(portal__schema_name__in=schemas)
    assert {(row.state, row.last_applied, row.error) for row in rows} == {("current", f"{APP}.{FIELD}", "")}
    assert rows.count() == len(schemas) and all(row.duration_ms > 0 and row.finished_at for row in rows)


@pytest.mark.django_db
def test_run_python_runs_in_each_schema_on_its_own_data(session_admin, spare_pool, throwaway):
    first = make_portal(session_admin, name="First", slug="fleet-first")
    second = make_portal(session_admin, name="Second", slug="fleet-second")
    throwaway(FIELD, DATA)

    _run()

    fresh = _fresh()
    for schema in _tenant_schemas():
        assert _catalog(schema) == fresh, schema
    assert ("fleet", True) in fresh["features"]
    notes = {}
    for portal in (first, second):
        with connection.cursor() as cursor:
            quoted = connection.ops.quote_name(portal.schema_name)
            cursor.execute(f"SELECT fleet_note FROM {quoted}.customer_portal_portalsettings")  # noqa: S608
            notes[portal.slug] = cursor.fetchone()[0]
    assert notes == {"fleet-first": "note: First", "fleet-second": "note: Second"}
    portal_delete(portal=first)  # its outcome row goes with it
    assert not PortalMigration.objects.filter(portal_id=first.id).exists()
    assert PortalMigration.objects.filter(portal_id=second.id).exists()


@pytest.mark.django_db
def test_a_data_dependent_failure_stops_only_its_schemas_and_a_second_run_retries_only_them(
    session_admin, spare_pool, throwaway, outcomes
):
    good = make_portal(session_admin, name="Good", slug="fleet-good")
    bad = [make_portal(session_admin, name=f"Bad {n}", slug=f"fleet-bad-{n}") for n in (1, 2)]
    for portal in bad:
        _welcome(portal, "forbidden")
    before = {portal.schema_name: _catalog(portal.schema_name) for portal in bad}
    throwaway(FIELD, CHECK)

    with pytest.raises(CommandError) as failed:
        _run()

    assert str(failed.value) == f"2 schema(s) failed: {', '.join(sorted(portal.schema_name for portal in bad))}"
    for portal in bad:
        assert _catalog(portal.schema_name) == before[portal.schema_name]  # rolled back whole: no column either
        row = PortalMigration.objects.get(portal=portal)
        assert row.state == "failed" and row.last_applied == ""
        assert row.error.startswith(f"{APP}.{CHECK}: IntegrityError:") and "cp_not_forbidden" in row.error
    assert PortalMigration.objects.get(portal=good).state == "current"
    assert (APP, CHECK) in _applied(good.schema_name)

    for portal in bad:
        _welcome(portal, "welcome")
    outcomes.clear()
    out, _ = _run("-v", "2")

    assert sorted(outcome.schema_name for outcome in outcomes) == sorted(portal.schema_name for portal in bad)
    assert all(outcome.applied == (f"{APP}.{FIELD}", f"{APP}.{CHECK}") for outcome in outcomes)
    schemas = _tenant_schemas()
    assert f"{len(schemas)} portal and spare schema(s): {len(schemas) - 2} current, 2 behind" in out
    fresh = _fresh()
    for schema in schemas:
        assert _catalog(schema) == fresh, schema
    assert set(PortalMigration.objects.filter(portal__in=bad).values_list("state", flat=True)) == {"current"}


@pytest.mark.django_db
def test_a_squashed_migration_is_applied_and_recorded_as_migrate_does(session_admin, spare_pool, throwaway):
    portal = make_portal(session_admin, name="Squashed", slug="fleet-squashed")
    partial = make_portal(session_admin, name="Partial", slug="fleet-partial")
    throwaway(FIELD, DATA, SQUASH)
    with connection.cursor() as cursor:  # only the first of the replaced ones recorded: neither side of the squash
        quoted = connection.ops.quote_name(partial.schema_name)
        insert = f"INSERT INTO {quoted}.django_migrations (app, name, applied) VALUES (%s, %s, now())"  # noqa: S608
        cursor.execute(insert, [APP, FIELD])
    partial_before = _catalog(partial.schema_name)

    with pytest.raises(CommandError, match=f"^1 schema\\(s\\) failed: {partial.schema_name}$"):
        _run()

    fresh = _fresh()  # Django's own path: the squash applied, then its replaced ones and itself recorded
    assert {(APP, FIELD), (APP, DATA), (APP, SQUASH)} <= set(fresh["migrations"])
    for schema in _tenant_schemas():
        if schema != partial.schema_name:
            assert _catalog(schema) == fresh, schema
    assert _catalog(partial.schema_name) == partial_before
    error = PortalMigration.objects.get(portal=partial).error
    assert error == (
        f"squashed migration {APP}.{SQUASH} is partly applied; "
        f"run `manage.py migrate_schemas --schema {partial.schema_name}` for this schema"
    )
    assert PortalMigration.objects.get(portal=portal).last_applied == f"{APP}.{SQUASH}"


@pytest.mark.django_db
def test_when_the_public_schema_fails_nothing_else_is_tried(spare_pool, test_portal, throwaway, outcomes):
    throwaway(FIELD)
    throwaway(PUBLIC_FAILS, app="portals")
    out, err = StringIO(), StringIO()

    with pytest.raises(CommandError, match=r"^1 schema\(s\) failed: public$"):
        call_command("migrate_portals", stdout=out, stderr=err)

    schemas = _tenant_schemas()
    assert [outcome.schema_name for outcome in outcomes] == ["public"]
    assert outcomes[0].error == f"portals.{PUBLIC_FAILS}: RuntimeError: the public schema's migration failed"
    left = f"The public schema failed, so {len(schemas)} other schema(s) were not tried (left pending)."
    assert left in err.getvalue()
    assert all((APP, FIELD) not in _applied(schema) for schema in ["public", *schemas])
    states = PortalMigration.objects.filter(portal__schema_name__in=schemas).values_list("state", flat=True)
    assert sorted(states) == ["pending"] * len(schemas)


@pytest.mark.django_db
def test_the_first_run_makes_the_outcome_table_in_the_public_schema_before_writing_to_it(
    spare_pool, test_portal, outcomes
):
    call_command(
        "migrate_schemas", "portals", "0004_portal_created_by", shared=True, verbosity=0
    )  # before this feature

    _run()

    assert [(outcome.schema_name, outcome.applied) for outcome in outcomes] == [
        ("public", ("portals.0005_portalmigration", "portals.0006_domain_verification"))
    ]
    recorded = dict(PortalMigration.objects.values_list("portal__schema_name", "state"))
    assert recorded == {schema: "current" for schema in ["public", *_tenant_schemas()]}


@pytest.mark.django_db
def test_after_migrate_schemas_there_is_nothing_left_to_do(spare_pool, test_portal, throwaway, outcomes):
    throwaway(FIELD)
    call_command("migrate_schemas", verbosity=0)  # django-tenants' own command, public and every tenant

    out, _ = _run()

    schemas = _tenant_schemas()
    assert out.splitlines() == [
        "public schema: current",
        f"{len(schemas)} portal and spare schema(s): {len(schemas)} current, 0 behind",
    ]
    assert outcomes == []


@pytest.mark.django_db
def test_plan_lists_what_would_run_and_writes_nothing(session_admin, spare_pool, throwaway):
    portal = make_portal(session_admin, name="Planned", slug="fleet-planned")
    throwaway(FIELD)
    schemas = _tenant_schemas()
    before = {schema: _catalog(schema) for schema in schemas}

    with CaptureQueriesContext(connection) as queries:
        out, _ = _run("--plan")

    lines = out.splitlines()
    assert lines[:3] == [
        "public schema: 1 migration(s) behind",
        f"{len(schemas)} portal and spare schema(s): 0 current, {len(schemas)} behind",
        f"plan 1: {len(schemas) + 1} schema(s) missing {APP}.{FIELD}",
    ]
    assert f"  {portal.schema_name} (portal fleet-planned)" in lines
    assert all(query["sql"].lstrip().upper().startswith(("SELECT", "WITH")) for query in queries)
    assert {schema: _catalog(schema) for schema in schemas} == before
    assert (APP, FIELD) not in _applied("public")
    assert not PortalMigration.objects.filter(portal=portal).exists()


@pytest.mark.django_db
def test_portal_option_migrates_the_public_schema_and_that_portal_only(session_admin, spare_pool, throwaway, outcomes):
    chosen = make_portal(session_admin, name="Chosen", slug="fleet-chosen")
    other = make_portal(session_admin, name="Other", slug="fleet-other")
    throwaway(FIELD)

    out, _ = _run("--portal", "fleet-chosen")

    assert out.splitlines()[1] == "1 portal and spare schema(s): 0 current, 1 behind"
    assert [outcome.schema_name for outcome in outcomes] == ["public", chosen.schema_name]
    assert (APP, FIELD) in _applied(chosen.schema_name)
    assert (APP, FIELD) not in _applied(other.schema_name)
    with pytest.raises(CommandError, match="No portal 'nope'"):
        _run("--portal", "nope")


@pytest.mark.django_db
def test_a_schema_without_its_own_migrations_table_is_migrated_from_scratch(spare_pool, throwaway):
    throwaway(FIELD)
    bare = Portal.objects.create(schema_name="spare_fleet_bare", slug="spare-fleet-bare", name="(spare)", is_spare=True)
    with connection.cursor() as cursor:
        cursor.execute("CREATE SCHEMA spare_fleet_bare")

    _run()

    assert _catalog(bare.schema_name) == _fresh()


@pytest.mark.django_db
def test_a_tenant_row_without_a_schema_is_reported_and_the_rest_go_on(session_admin, spare_pool, throwaway):
    lost = Portal.objects.create(schema_name="spare_fleet_lost", slug="spare-fleet-lost", name="(spare)", is_spare=True)
    portal = make_portal(session_admin, name="Kept", slug="fleet-kept")
    throwaway(FIELD)

    with pytest.raises(CommandError, match=r"^1 schema\(s\) failed: spare_fleet_lost$"):
        _run()

    assert PortalMigration.objects.get(portal=lost).error == "schema spare_fleet_lost does not exist"
    assert (APP, FIELD) in _applied(portal.schema_name)


@pytest.mark.django_db
def test_parallel_workers_need_autocommit(spare_pool, throwaway):
    throwaway(FIELD)
    with pytest.raises(RuntimeError, match="need autocommit"):
        _run("--parallel", "2")


@pytest.mark.django_db
def test_a_second_run_is_refused_while_one_holds_the_lock(spare_pool, throwaway):
    throwaway(FIELD)
    holder = connection.get_new_connection(connection.get_connection_params())
    holder.autocommit = True
    try:
        holder.execute("SELECT pg_advisory_lock(%s)", [fleet._RUN_LOCK_KEY])
        with pytest.raises(CommandError, match="another migrate_portals run is under way"):
            _run()
    finally:
        holder.close()


def test_parallel_run_in_real_processes(spare_pool, django_db_blocker, throwaway, outcomes):
    """Committed: spares of the test's own, one made to fail and one whose worker dies; the run's migrations
    are rolled back after with migrate_schemas, and the spares dropped."""
    with django_db_blocker.unblock():
        before = list(PortalMigration.objects.values())
        mine = [spare_schema_create() for _ in range(3)]
        failing, dying = mine[1], mine[2]
        _welcome(failing, "forbidden")
        _welcome(dying, "die")
        (latest,) = MigrationLoader(None).graph.leaf_nodes(APP)
        throwaway(FIELD, CHECK, DIE)
        try:
            with pytest.raises(CommandError) as failed:
                _run("--parallel", "2")

            names = sorted([failing.schema_name, dying.schema_name])
            assert str(failed.value) == f"2 schema(s) failed: {', '.join(names)}"
            died = next(outcome for outcome in outcomes if outcome.schema_name == dying.schema_name)
            assert died.error.startswith("worker process ") and died.error.endswith(" died (exit code 3)")
            assert PortalMigration.objects.get(portal=dying).state == "failed"
            assert (APP, FIELD) not in _applied(dying.schema_name)  # its transaction died with its connection
            workers = {outcome.worker_pid for outcome in outcomes if outcome.kind != "public" and outcome.worker_pid}
            assert workers and os.getpid() not in workers  # forked workers migrated the portal and spare schemas
            assert next(o for o in outcomes if o.kind == "public").worker_pid == os.getpid()  # public: here, first
            assert (APP, DIE) in _applied(mine[0].schema_name)

            _welcome(failing, "fixed")
            _welcome(dying, "fixed")
            outcomes.clear()
            _run("--parallel", "2")

            assert sorted(outcome.schema_name for outcome in outcomes) == names
            fresh = _fresh("fleet_fresh_parallel")
            for schema in _tenant_schemas():
                assert _catalog(schema) == fresh, schema
        finally:
            call_command("migrate_schemas", APP, latest[1], verbosity=0)  # unapplies the throwaway ones everywhere
            schema_drop(schema_name="fleet_fresh_parallel")
            for spare in mine:
                schema_drop(schema_name=spare.schema_name)
                spare.delete()
            PortalMigration.objects.exclude(pk__in=[row["portal_id"] for row in before]).delete()
            for row in before:
                PortalMigration.objects.filter(pk=row["portal_id"]).update(**row)
        assert {(APP, FIELD), (APP, CHECK), (APP, DIE)}.isdisjoint(_applied("public"))
