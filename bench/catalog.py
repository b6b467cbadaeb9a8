"""What each portal schema costs PostgreSQL: catalog rows and bytes, and a backend's catalog caches.

Used by `python -m bench.scale` (bench/scale.py) against its own throwaway database.
"""

import contextlib
import copy
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from django.db import connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from portals.provisioning import SCHEMA_PREFIX, SPARE_PREFIX

# The catalogs a schema of tables, indexes, sequences and constraints adds rows to.
CATALOGS = ("pg_class", "pg_attribute", "pg_index", "pg_constraint", "pg_type", "pg_depend")
_PORTAL_SCHEMAS = f"(nspname LIKE '{SCHEMA_PREFIX}%' OR nspname LIKE '{SPARE_PREFIX}%')"


@dataclass(frozen=True)
class CatalogSize:
    schemas: int  # portal and spare schemas in the database
    rows: dict[str, int]  # catalog -> rows
    catalog_bytes: int  # every pg_catalog table with its indexes and TOAST
    bytes_by_catalog: dict[str, int]
    portal_data_bytes: int  # the portal schemas' own tables and indexes (files on disk)
    one_schema_relations: int  # pg_class rows of one portal schema
    one_schema_attributes: int  # pg_attribute rows of those relations
    relations_by_kind: dict[str, int]  # of one portal schema: r table, i index, S sequence


def _scalar(sql: str, params: list[Any] | None = None) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchone()[0]


def portal_schemas() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT nspname FROM pg_namespace WHERE {_PORTAL_SCHEMAS} ORDER BY oid")  # noqa: S608
        return [name for (name,) in cursor.fetchall()]


def vacuum_catalogs() -> None:
    """Plain VACUUM of the catalogs: bulk DDL leaves dead rows a running server's autovacuum would reclaim."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relnamespace = 'pg_catalog'::regnamespace AND relkind = 'r'")
        names = [name for (name,) in cursor.fetchall()]
        cursor.execute("VACUUM " + ", ".join(f"pg_catalog.{connection.ops.quote_name(name)}" for name in names))


def catalog_size() -> CatalogSize:
    schemas = portal_schemas()
    sample = schemas[len(schemas) // 2]
    with connection.cursor() as cursor:
        rows = {}
        for name in CATALOGS:
            cursor.execute(f"SELECT count(*) FROM pg_catalog.{name}")  # noqa: S608
            rows[name] = cursor.fetchone()[0]
        cursor.execute(
            "SELECT relname, pg_total_relation_size(oid) FROM pg_class "
            "WHERE relnamespace = 'pg_catalog'::regnamespace AND relkind = 'r'"
        )
        sizes = dict(cursor.fetchall())
        data_sql = "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n "
        cursor.execute(data_sql + f"ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND {_PORTAL_SCHEMAS}")
        data = int(cursor.fetchone()[0])
        cursor.execute(
            "SELECT relkind, count(*) FROM pg_class WHERE relnamespace = %s::regnamespace GROUP BY 1", [sample]
        )
        kinds = dict(cursor.fetchall())
        cursor.execute(
            "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "WHERE c.relnamespace = %s::regnamespace",
            [sample],
        )
        attributes = cursor.fetchone()[0]
    return CatalogSize(
        schemas=len(schemas),
        rows=rows,
        catalog_bytes=sum(sizes.values()),
        bytes_by_catalog={name: sizes[name] for name in CATALOGS},
        portal_data_bytes=data,
        one_schema_relations=sum(kinds.values()),
        one_schema_attributes=attributes,
        relations_by_kind=kinds,
    )


# One backend's memory -------------------------------------------------------------------------


@dataclass(frozen=True)
class BackendMemory:
    touched: int  # portal schemas queried so far on this connection
    cache_context_bytes: int | None  # CacheMemoryContext and its children (catcache, relcache, index info)
    all_contexts_bytes: int | None  # every memory context of the backend
    vm_rss_kib: int | None  # /proc/<pid>/status, when the server runs on this machine and may be read
    rss_anon_kib: int | None  # the backend's private memory (VmRSS also counts shared buffers it touched)
    touch_ms_per_portal: float | None = None  # the batch that got it here, per portal


@dataclass
class Probe:
    """One raw connection to the bench database (its own backend), outside Django's connection handling."""

    wrapper: BaseDatabaseWrapper
    pid: int = 0
    tables: list[str] = field(default_factory=list)

    def execute(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with self.wrapper.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []


@contextlib.contextmanager
def probe(tables: list[str]) -> Iterator[Probe]:
    settings_dict = copy.deepcopy(connection.settings_dict)
    wrapper = type(connections["default"])(settings_dict, "bench_scale_probe")
    wrapper.ensure_connection()
    wrapper.connection.autocommit = True
    found = Probe(wrapper=wrapper, tables=tables)
    found.pid = found.execute("SELECT pg_backend_pid()")[0][0]
    try:
        yield found
    finally:
        wrapper.close()


def _proc_status(pid: int) -> dict[str, int]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # another machine's server, or not ours to read
        return {}
    return {line.split(":")[0]: int(line.split()[1]) for line in text.splitlines() if line.endswith(" kB")}


def backend_memory(session: Probe, touched: int, touch_ms: float | None = None) -> BackendMemory:
    try:
        cache = session.execute(
            "SELECT coalesce(sum(total_bytes), 0) FROM pg_backend_memory_contexts "
            "WHERE name = 'CacheMemoryContext' OR parent = 'CacheMemoryContext'"
        )[0][0]
        everything = session.execute("SELECT coalesce(sum(total_bytes), 0) FROM pg_backend_memory_contexts")[0][0]
    except psycopg.Error:  # PostgreSQL < 14: no pg_backend_memory_contexts
        cache = everything = None
    status = _proc_status(session.pid)
    return BackendMemory(
        touched=touched,
        cache_context_bytes=int(cache) if cache is not None else None,
        all_contexts_bytes=int(everything) if everything is not None else None,
        vm_rss_kib=status.get("VmRSS"),
        rss_anon_kib=status.get("RssAnon"),
        touch_ms_per_portal=touch_ms,
    )


def touch(session: Probe, schemas: list[str]) -> float:
    """What a worker does for each portal over time: every table of the portal read once (the planner
    opens each table's indexes too). Returns milliseconds per portal."""
    quote = connection.ops.quote_name
    start = time.perf_counter()
    for schema in schemas:
        session.execute(f"SET search_path TO {quote(schema)}, public")
        for table in session.tables:
            session.execute(f"SELECT count(*) FROM {quote(table)}")  # noqa: S608
    return (time.perf_counter() - start) * 1000 / max(len(schemas), 1)


def portal_tables(schema: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = %s::regnamespace AND relkind = 'r' ORDER BY 1", [schema]
        )
        return [name for (name,) in cursor.fetchall()]


def lock_capacity() -> int:
    """Rows of the shared lock table: max_locks_per_transaction x (max_connections + max_prepared_transactions)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('max_locks_per_transaction')::int * "
            "(current_setting('max_connections')::int + current_setting('max_prepared_transactions')::int)"
        )
        return int(cursor.fetchone()[0])


def locks_held() -> int:
    return int(_scalar("SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'relation'"))
