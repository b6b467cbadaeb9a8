"""The throwaway databases a run works in, and the cheap schema copy used to reach N portals.

The real database is never touched: `create_test_db` makes `bench_portalsite` next to it
(same server), every connection of the run points there or at its copy, and both are dropped
at the end.
"""

import contextlib
import copy
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper

BENCH_DATABASE_NAME = "bench_portalsite"

# A copy of a migrated portal schema: same tables, indexes, constraints, identity sequences
# and rows (django_migrations, settings, features), in about 25 ms instead of a full migrate.
# Used only to make the "existing portals" of the scale figure; every timed create claims a
# spare made by the project's own `spare_schema_create`.
CLONE_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION public.bench_clone_schema(src text, dst text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
  t record;
BEGIN
  EXECUTE format('CREATE SCHEMA %I', dst);
  FOR t IN SELECT relname FROM pg_class WHERE relnamespace = src::regnamespace AND relkind = 'r' LOOP
    EXECUTE format('CREATE TABLE %I.%I (LIKE %I.%I INCLUDING ALL)', dst, t.relname, src, t.relname);
    EXECUTE format('INSERT INTO %I.%I OVERRIDING SYSTEM VALUE SELECT * FROM %I.%I',
                   dst, t.relname, src, t.relname);
  END LOOP;
  FOR t IN SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
           WHERE c.relnamespace = src::regnamespace AND c.relkind = 'r' AND a.attidentity <> '' LOOP
    EXECUTE format('SELECT setval(pg_get_serial_sequence(%L, %L), (SELECT coalesce(max(%I), 0) + 1 FROM %I.%I), false)',
                   format('%I.%I', dst, t.relname), t.attname, t.attname, dst, t.relname);
  END LOOP;
  FOR t IN SELECT c.relname, k.conname, pg_get_constraintdef(k.oid) AS def
           FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
           WHERE k.connamespace = src::regnamespace AND k.contype = 'f' LOOP
    EXECUTE format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s', dst, t.relname, t.conname,
                   replace(t.def, quote_ident(src) || '.', quote_ident(dst) || '.'));
  END LOOP;
END
$fn$;
"""


class BenchDatabaseBusy(RuntimeError):
    """Another run is using the throwaway database."""


def bench_caches(cache_dir: Path) -> dict[str, Any]:
    """Caches of the run: the database cache in the bench database, routing files in a temporary folder.

    The project's routing cache lives under DATA_DIR and is shared with any dev server on
    this machine; the run must not leave host -> portal entries there.
    """
    return {
        "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "portalsite_cache"},
        "routing": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(cache_dir),
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        },
    }


def _server_cursor() -> AbstractContextManager[CursorWrapper]:
    """A cursor on the server's `postgres` database, for CREATE and DROP DATABASE (Django's own helper)."""
    return connection._nodb_cursor()  # Django's private helper (since 3.1)


def _sessions_on(name: str) -> int:
    with _server_cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [name])
        (count,) = cursor.fetchone()
    return int(count)


def _drop(name: str) -> None:
    connection.close()
    with _server_cursor() as cursor:
        cursor.execute("SHOW server_version_num")
        # FORCE (PostgreSQL 13+): a straggling session, e.g. of a killed server, must not keep it alive.
        force = " WITH (FORCE)" if int(cursor.fetchone()[0]) >= 130000 else ""
        cursor.execute(f"DROP DATABASE IF EXISTS {connection.ops.quote_name(name)}{force}")


@contextlib.contextmanager
def throwaway_database(name: str = BENCH_DATABASE_NAME) -> Iterator[str]:
    """Create `name` on the configured server, migrate it (migrate_schemas), yield, and always drop it."""
    original = connection.settings_dict["NAME"]
    if _sessions_on(name):
        raise BenchDatabaseBusy(f"database {name} is in use: is another `python -m bench` running?")
    connection.settings_dict["TEST"]["NAME"] = name
    try:
        # django-tenants replaces `migrate` with `migrate_schemas`, so this migrates the public
        # schema (and would migrate every tenant, of which there are none yet).
        with contextlib.redirect_stdout(sys.stderr):  # createcachetable chatter; stdout is the table's
            connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=False)
        with connection.cursor() as cursor:
            cursor.execute(CLONE_FUNCTION_SQL)
        yield name
    finally:
        _drop(name)  # also after a failed create: it was ours (checked idle above)
        settings.DATABASES["default"]["NAME"] = original
        connection.settings_dict["NAME"] = original


@contextlib.contextmanager
def database_copy(name: str) -> Iterator[BaseDatabaseWrapper]:
    """A copy of the current database (`CREATE DATABASE ... TEMPLATE`) and a connection to it; dropped on exit.

    The source must have no sessions at that moment: the caller starts the HTTP server afterwards.
    """
    if _sessions_on(name):
        raise BenchDatabaseBusy(f"database {name} is in use: is another `python -m bench` running?")
    source = connection.settings_dict["NAME"]
    quote = connection.ops.quote_name
    connection.close()
    with _server_cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {quote(name)}")  # left behind by a killed run
        cursor.execute(f"CREATE DATABASE {quote(name)} TEMPLATE {quote(source)}")
    settings_dict = copy.deepcopy(connection.settings_dict)
    settings_dict["NAME"] = name
    wrapper = type(connections["default"])(settings_dict, "default")
    try:
        yield wrapper
    finally:
        wrapper.close()
        _drop(name)


@contextlib.contextmanager
def using(wrapper: BaseDatabaseWrapper) -> Iterator[None]:
    """Make `wrapper` the default connection (services use `connection` and `connections["default"]`)."""
    previous = connections["default"]
    connections["default"] = wrapper
    try:
        yield
    finally:
        connections["default"] = previous


def settle(*, checkpoint: bool) -> str:
    """Bring the current database to a steady state after a bulk load; returns what was done.

    Bulk-creating hundreds of schemas in seconds leaves dead catalog rows and unanalyzed tables
    (autovacuum may be off, or not yet around to it) and gigabytes of dirty pages that the
    checkpointer then flushes while the next figures are being timed. Production gets its
    portals over months with autovacuum running, so measure after VACUUM (ANALYZE) and a CHECKPOINT.
    """
    done = []
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
        done.append("VACUUM (ANALYZE)")
        if checkpoint:
            try:
                cursor.execute("CHECKPOINT")  # superuser or pg_checkpoint only
                done.append("CHECKPOINT")
            except DatabaseError as exc:
                done.append(f"no CHECKPOINT ({str(exc).strip().splitlines()[0]})")
    return ", ".join(done)
