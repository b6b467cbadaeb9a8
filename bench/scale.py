"""`python -m bench.scale [--quick] [--json FILE]`: what schema-per-portal costs PostgreSQL as portals grow.

See bench/README.md ("bench.scale"). Works in its own throwaway database (`bench_scale_portalsite`)
on the configured server, dropped at the end; prints plain-text tables to stdout.
"""

import argparse
import json
import logging
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.entry import django_main

DATABASE_NAME = "bench_scale_portalsite"


@dataclass(frozen=True)
class ScalePlan:
    levels: tuple[int, ...]  # portal schemas at which the catalog is measured
    touches: tuple[int, ...]  # portals one backend has queried when its memory is read
    migrate_portals: int  # schemas migrate_schemas runs over, per executor
    batch: int = 50  # schemas copied per transaction (each holds ~30 relation locks per schema)


DEFAULT_SCALE = ScalePlan(levels=(100, 1000, 5000), touches=(10, 100, 1000), migrate_portals=20)
QUICK_SCALE = ScalePlan(levels=(100, 500), touches=(10, 100, 500), migrate_portals=10)


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 and 500 portals (about a minute)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write every figure to FILE as JSON")
    return parser.parse_args(argv)


def _table(title: str, header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    cells = [header, *[tuple("-" if value is None else str(value) for value in row) for row in rows]]
    widths = [max(len(row[column]) for row in cells) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return f"{title}\n" + "\n".join(lines) + "\n"


def _kib(value: int | None) -> str | None:
    return None if value is None else f"{value / 1024:,.0f}"


def _mib(value: int | None, unit: int = 1024 * 1024) -> str | None:
    return None if value is None else f"{value / unit:,.1f}"


def run(argv: list[str]) -> int:
    arguments = _arguments(argv)
    plan = QUICK_SCALE if arguments.quick else DEFAULT_SCALE
    logging.getLogger().setLevel(logging.WARNING)

    from django.conf import settings
    from django.test.utils import override_settings

    from bench import catalog, pgbouncer, scenarios
    from bench.database import BenchDatabaseBusy, bench_caches, database_copy, throwaway_database
    from bench.migrate import migrate_schemas, migration_package
    from bench.scenarios import log
    from customer_portal.selectors import portal_user_counts
    from portals.models import Portal
    from portalsite.db import tenant_connection

    started = time.perf_counter()
    out: dict[str, Any] = {"plan": asdict(plan)}
    log(f"bench.scale: {'quick' if arguments.quick else 'default'} run: {plan}")
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bench-routing-") as cache_dir,
            throwaway_database(DATABASE_NAME) as database_name,
            override_settings(CACHES=bench_caches(Path(cache_dir)), DEBUG=False),
            scenarios.refill_by_bench(),
        ):
            out["postgresql"] = tenant_connection.pg_version
            log(f"throwaway database {database_name}; migrated template spare, then copies")
            scenarios.pool_ensure(1)
            scenarios.spares_copy(plan.migrate_portals - 1)

            # migrate_schemas with each executor, on a copy at a few schemas (the subprocess executor
            # starts an interpreter per schema); the main bench measures standard and multiprocessing at N.
            migrate_rows = []
            with database_copy(f"{database_name}_migrate"), migration_package(3) as package:
                for executor, parallel in (("standard", None), ("multiprocessing", None), ("subprocess", 2)):
                    log(f"migrate_schemas over {plan.migrate_portals} schemas, {executor} executor")
                    result = migrate_schemas(
                        package=package, executor=executor, database_name=f"{database_name}_migrate",
                        cache_dir=Path(cache_dir), parallel=parallel,
                    )  # fmt: skip
                    migrate_rows.append(result)
            out["migrate"] = [asdict(row) | {"per_portal_ms": row.per_portal_ms} for row in migrate_rows]

            sizes: list[catalog.CatalogSize] = []
            create_ms: list[float] = []
            user_counts: list[dict[str, Any]] = []
            capacity = catalog.lock_capacity()
            locks_per_portal: float | None = None
            for level in plan.levels:
                missing = created = level - Portal.objects.filter(is_spare=True).count()
                start = time.perf_counter()
                while missing > 0:
                    count = min(plan.batch, missing)
                    scenarios.spares_copy(count)
                    missing -= count
                create_ms.append((time.perf_counter() - start) * 1000 / max(created, 1))
                catalog.vacuum_catalogs()
                sizes.append(catalog.catalog_size())
                log(f"  {sizes[-1].schemas} portal schemas: catalog {sizes[-1].catalog_bytes / 2**20:,.0f} MiB")
                counted = _user_counts(capacity, locks_per_portal, portal_user_counts, catalog)
                locks_per_portal = counted.get("locks_per_portal", locks_per_portal)
                user_counts.append(counted)
            out["catalog"] = [asdict(size) for size in sizes]
            out["copy_ms_per_schema"] = create_ms
            out["user_counts"] = user_counts

            schemas = catalog.portal_schemas()
            tables = catalog.portal_tables(schemas[0])
            memory: list[catalog.BackendMemory] = []
            log(f"one backend touching {', '.join(map(str, plan.touches))} portals ({len(tables)} tables each)")
            with catalog.probe(tables) as session:
                memory.append(catalog.backend_memory(session, 0))
                done = 0
                for target in plan.touches:
                    ms = catalog.touch(session, schemas[done:target])
                    done = target
                    memory.append(catalog.backend_memory(session, done, ms))
                warm_ms = catalog.touch(session, schemas[:10])
            with catalog.probe(tables) as session:
                reconnected = [catalog.backend_memory(session, 0)]
                cold_ms = catalog.touch(session, schemas[:10])
                reconnected.append(catalog.backend_memory(session, 10, cold_ms))
            out["backend_memory"] = [asdict(sample) for sample in memory]
            out["backend_memory_reconnected"] = [asdict(sample) for sample in reconnected]
            out["touch_warm_ms_per_portal"] = warm_ms

            observations: list[pgbouncer.Observation] = []
            if pgbouncer.available():
                log("pgbouncer: transaction and session pooling in front of the throwaway database")
                observations = pgbouncer.demonstrate()
                out["pgbouncer"] = [asdict(item) | {"leaked": item.leaked} for item in observations]
            else:
                log(f"WARNING: {pgbouncer.PGBOUNCER_MISSING}: no search_path demonstration")
    except BenchDatabaseBusy as exc:
        print(f"bench.scale: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, SystemExit) as exc:
        print("bench.scale: interrupted; the throwaway database was dropped", file=sys.stderr)
        if isinstance(exc, SystemExit):
            raise
        return 130

    wall = time.perf_counter() - started
    out["wall_seconds"] = round(wall, 1)
    print(_report(out, settings.DATABASES["default"].get("HOST") or "localhost"))
    log(f"done in {wall:.1f} s; throwaway database dropped")
    if arguments.json:
        arguments.json.write_text(json.dumps(out, indent=2, default=str) + "\n")
        log(f"figures written to {arguments.json}")
    return 0


def _user_counts(capacity: int, locks_per_portal: float | None, counts: Any, catalog: Any) -> dict[str, Any]:
    """GET /v1/portal's user counts: one UNION ALL over every portal's users table, in one transaction.

    Each portal's table and its indexes are locked (AccessShareLock) until the transaction ends, in
    the lock table every session of the server shares; the query is not run where it would need more
    than half of that table (it would fail with "out of shared memory" and make others' statements
    fail meanwhile): the need is computed from the locks per portal measured at a previous level.
    """
    from django.db import transaction

    from portals.models import Portal

    portals = list(Portal.objects.filter(is_spare=True))
    row: dict[str, Any] = {"portals": len(portals), "lock_capacity": capacity}
    if locks_per_portal is not None and locks_per_portal * len(portals) > capacity // 2:
        row.update(skipped=True, locks_needed=round(locks_per_portal * len(portals)))
        return row
    with transaction.atomic():
        start = time.perf_counter()
        counts(portals=portals)
        row["ms"] = round((time.perf_counter() - start) * 1000, 1)
        row["locks"] = catalog.locks_held()
    row["locks_per_portal"] = round(row["locks"] / len(portals), 2)
    return row


def _report(out: dict[str, Any], host: str) -> str:
    parts = [f"bench.scale on {host}, PostgreSQL {out['postgresql']}, wall {out['wall_seconds']} s\n"]
    sizes = out["catalog"]
    rows = []
    for index, size in enumerate(sizes):
        slope = None
        if index:
            previous = sizes[index - 1]
            slope = (size["catalog_bytes"] - previous["catalog_bytes"]) / (size["schemas"] - previous["schemas"])
        rows.append((
            f"{size['schemas']:,}",
            f"{size['rows']['pg_class']:,}",
            f"{size['rows']['pg_attribute']:,}",
            f"{size['rows']['pg_depend']:,}",
            _mib(size["bytes_by_catalog"]["pg_class"]),
            _mib(size["bytes_by_catalog"]["pg_attribute"]),
            _mib(size["catalog_bytes"]),
            _kib(round(size["catalog_bytes"] / size["schemas"])),
            _kib(round(slope)) if slope is not None else None,
            _kib(round(size["portal_data_bytes"] / size["schemas"])),
            f"{out['copy_ms_per_schema'][index]:.1f}",
        ))  # fmt: skip
    first = sizes[0]
    kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(first["relations_by_kind"].items()))
    parts.append(
        _table(
            f"Catalog per portal schema ({first['one_schema_relations']} pg_class rows: {kinds}; "
            f"{first['one_schema_attributes']} pg_attribute rows); catalogs VACUUMed before reading",
            ("schemas", "pg_class rows", "pg_attribute rows", "pg_depend rows", "pg_class MiB", "pg_attribute MiB",
             "catalog MiB", "catalog KiB/schema", "KiB/schema since previous", "portal files KiB/schema",
             "copy ms/schema"),
            rows,
        )
    )  # fmt: skip
    memory_rows = []
    for sample in out["backend_memory"]:
        memory_rows.append((
            f"{sample['touched']:,}", _mib(sample["cache_context_bytes"]), _mib(sample["all_contexts_bytes"]),
            _mib(sample["rss_anon_kib"], 1024), _mib(sample["vm_rss_kib"], 1024),
            None if sample["touch_ms_per_portal"] is None else f"{sample['touch_ms_per_portal']:.2f}",
        ))  # fmt: skip
    for sample in out["backend_memory_reconnected"]:
        memory_rows.append((
            f"reconnected, {sample['touched']}", _mib(sample["cache_context_bytes"]),
            _mib(sample["all_contexts_bytes"]), _mib(sample["rss_anon_kib"], 1024), _mib(sample["vm_rss_kib"], 1024),
            None if sample["touch_ms_per_portal"] is None else f"{sample['touch_ms_per_portal']:.2f}",
        ))  # fmt: skip
    memory_rows.append(("10 again, warm", None, None, None, None, f"{out['touch_warm_ms_per_portal']:.2f}"))
    parts.append(
        _table(
            "One backend after touching N portals (every table of each read once), then after reconnecting",
            ("portals touched", "CacheMemoryContext MiB", "all contexts MiB", "RssAnon MiB", "VmRSS MiB",
             "ms/portal (that batch)"),
            memory_rows,
        )
    )  # fmt: skip
    count_rows = []
    for row in out["user_counts"]:
        if row.get("skipped"):
            count_rows.append((f"{row['portals']:,}", None, f"~{row['locks_needed']:,} (not run)", None,
                               f"{row['lock_capacity']:,}"))  # fmt: skip
        else:
            count_rows.append((f"{row['portals']:,}", row["ms"], f"{row['locks']:,}", row["locks_per_portal"],
                               f"{row['lock_capacity']:,}"))  # fmt: skip
    parts.append(
        _table(
            "GET /v1/portal's user counts (one UNION ALL over every portal schema, in one transaction)",
            ("portals", "ms", "relation locks held", "locks/portal", "lock table (max_locks x connections)"),
            count_rows,
        )
    )
    parts.append(
        _table(
            "migrate_schemas, one new tenant migration (command only; interpreter start-up excluded)",
            ("executor", "schemas", "seconds", "ms/portal"),
            [(row["executor"], row["schemas"], f"{row['seconds']:.2f}", f"{row['per_portal_ms']:.1f}")
             for row in out["migrate"]],
        )
    )  # fmt: skip
    if "pgbouncer" in out:
        parts.append(
            _table(
                "search_path under PgBouncer (127.0.0.1, throwaway; transaction pool of 1 server connection)",
                ("case", "step", "expected", "observed", "leak"),
                [(item["case"], item["step"], item["expected"], item["observed"], "LEAK" if item["leaked"] else "no")
                 for item in out["pgbouncer"]],
            )
        )  # fmt: skip
    return "\n".join(parts)


if __name__ == "__main__":
    sys.exit(django_main(lambda: run, sys.argv[1:]))
