"""Argument parsing and the order of a run: set up, copy at 10 portals, grow to N, measure both side by side, report."""

import argparse
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.test.utils import override_settings

from bench import scenarios
from bench.database import BenchDatabaseBusy, bench_caches, database_copy, throwaway_database, using
from bench.database import settle as settle_database
from bench.report import Figure, Spread, at_least, at_most, json_write, table
from bench.scenarios import Round, log
from bench.server import BenchServer

SMALL = 10  # portals in the org for the "few portals" measurements


@dataclass(frozen=True)
class Plan:
    portals: int
    rounds: int  # create/delete rounds at each scale; figures pair round i at 10 with round i at N
    creates_per_round: int
    dt_creates_per_round: int
    http_creates: int
    invite_repeats: int


DEFAULT_PLAN = Plan(
    portals=1000, rounds=6, creates_per_round=10, dt_creates_per_round=4, http_creates=40, invite_repeats=5
)
QUICK_PLAN = Plan(portals=200, rounds=3, creates_per_round=7, dt_creates_per_round=3, http_creates=20, invite_repeats=3)


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Portal lifecycle benchmarks (one table).")
    parser.add_argument("--quick", action="store_true", help="reduced run (< 2 min): fewer repeats, 200 portals")
    parser.add_argument(
        "--portals", type=int, metavar="N", help="portals for the scale figure (default 1000; quick 200)"
    )
    parser.add_argument(
        "--no-settle", action="store_true", help="skip VACUUM (ANALYZE) and CHECKPOINT after growing to N portals"
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures to FILE as JSON")
    arguments = parser.parse_args(argv)
    if arguments.portals is not None and arguments.portals <= SMALL:
        parser.error(f"--portals must be more than {SMALL}")
    return arguments


def _ratios(numerators: list[Round], denominators: list[Round], pick: str, of: str) -> list[float]:
    """Per round: median of `pick` in the numerator round over median of `of` in the denominator round."""
    return [
        statistics.median(getattr(top, pick)) / statistics.median(getattr(bottom, of))
        for top, bottom in zip(numerators, denominators, strict=True)
    ]


def _flat(rounds: list[Round], attribute: str) -> list[float]:
    return [sample for one in rounds for sample in getattr(one, attribute)]


def _measure(plan: Plan, cache_dir: Path, database_name: str, *, settle: bool) -> tuple[list[Figure], dict[str, Any]]:
    log("setting up: organization, admin, 500 global accounts, spare pool")
    organization, admin = scenarios.bench_org_create()
    scenarios.global_accounts_create(scenarios.INVITE_BATCH // 2)
    scenarios.pool_ensure(settings.PORTAL_SPARE_POOL_SIZE)
    log(f"growing to {SMALL} portals")
    scenarios.populate(admin=admin, target=SMALL)
    # Two databases, one per scale, so rounds at 10 and at N alternate: whatever else the machine
    # is doing hits both sides of the ratio alike. Schemas, catalogs and tables are per database.
    log(f"copying it to {database_name}_{SMALL} (stays at {SMALL} portals); the original grows to {plan.portals}")
    with database_copy(f"{database_name}_{SMALL}") as small_database:
        log("starting gunicorn on 127.0.0.1 against the bench database")
        with BenchServer(database_name=database_name, cache_dir=cache_dir) as server:
            scenarios.populate(admin=admin, target=plan.portals)
            if settle:
                with using(small_database):
                    settle_database(checkpoint=False)
                log(f"settled both databases: {settle_database(checkpoint=True)}")
            # Warm-up, discarded: first calls pay for imports, compiled queries and cold caches.
            scenarios.paired_round(
                admin=admin, organization=organization, small_database=small_database, creates=2, dt_creates=1
            )
            small: list[Round] = []
            large: list[Round] = []
            for number in range(plan.rounds):
                log(f"round {number + 1}/{plan.rounds}: at {SMALL} and {plan.portals} portals, and django-tenants")
                at_small, at_large = scenarios.paired_round(
                    admin=admin,
                    organization=organization,
                    small_database=small_database,
                    creates=plan.creates_per_round,
                    dt_creates=plan.dt_creates_per_round,
                )
                small.append(at_small)
                large.append(at_large)
            log(f"{plan.http_creates} x POST /v1/portal over HTTP (each waits for the server's background refill)")
            posts, floors = scenarios.http_creates(server=server, admin=admin, count=plan.http_creates)
            log(
                f"bulk invites of {scenarios.INVITE_BATCH} e-mails: {plan.invite_repeats} over HTTP, as many in-process"
            )
            http_invites = [scenarios.http_invite(server=server, admin=admin) for _ in range(plan.invite_repeats)]
            server_slow_path = server.slow_path_creates()
        service_invites = [scenarios.service_invite(admin=admin) for _ in range(plan.invite_repeats)]
        queries_batch = [scenarios.service_invite(admin=admin, count_queries=True) for _ in range(2)]
        queries_few = [scenarios.service_invite(admin=admin, count=10, count_queries=True) for _ in range(2)]

    creates_small, creates_large = Spread.of(_flat(small, "creates")), Spread.of(_flat(large, "creates"))
    scale = creates_large.median / creates_small.median
    queries_batch_spread, queries_few_spread = Spread.of(queries_batch), Spread.of(queries_few)
    figures = [
        _figure("create_service", f"create portal, service, {SMALL} portals", "ms", creates_small,
                Spread.of(_flat(small, "dt_creates")), "django-tenants auto_create_schema", "<= 25 ms p50",
                at_most(25)),
        _figure("create_speedup", "create speed-up vs django-tenants", "x",
                Spread.of(_ratios(small, small, "dt_creates", "creates")), None, "", ">= 20x p50", at_least(20)),
        _figure("create_http", f"create portal, POST /v1/portal, {plan.portals}+ portals", "ms", Spread.of(posts),
                Spread.of(floors), "GET /healthz", "<= 50 ms p50", at_most(50)),
        replace(
            _figure("create_scale", f"create portal, service, {plan.portals} portals", "ms", creates_large,
                    creates_small, f"{SMALL} portals", f"<= 1.5x the {SMALL}-portal p50", lambda _: scale <= 1.5),
            verdict_note=f"{scale:.2f}x",
        ),
        _figure("delete_service", f"delete portal, service, {SMALL} portals", "ms", Spread.of(_flat(small, "deletes")),
                Spread.of(_flat(small, "dt_deletes")), "django-tenants delete(force_drop)", "<= 100 ms p50",
                at_most(100)),
        _figure("delete_service_scale", f"delete portal, service, {plan.portals} portals", "ms",
                Spread.of(_flat(large, "deletes")), None, "", "<= 100 ms p50", at_most(100)),
        _figure("invite_http", f"invite {scenarios.INVITE_BATCH:,} e-mails (half linked), HTTP", "ms",
                Spread.of(http_invites), Spread.of(service_invites), "service call in-process", "<= 1000 ms p50",
                at_most(1000)),
        _figure("invite_queries", f"invite queries, {scenarios.INVITE_BATCH:,} e-mails", "queries",
                queries_batch_spread, queries_few_spread, "10 e-mails", "no growth with e-mails",
                lambda ours: ours.max <= queries_few_spread.min),
    ]  # fmt: skip
    meta = {
        "plan": asdict(plan),
        "settled": settle,
        "existing_portals_at_end": scenarios.existing_portals(),
        "server_slow_path_creates": server_slow_path,
    }
    return figures, meta


def _figure(
    key: str,
    label: str,
    unit: str,
    ours: Spread,
    comparison: Spread | None,
    comparison_label: str,
    target: str,
    check: Any,
) -> Figure:
    return Figure(key, label, unit, ours, comparison, comparison_label, target, bool(check(ours)))


def run(argv: list[str]) -> int:
    arguments = _arguments(argv)
    plan = QUICK_PLAN if arguments.quick else DEFAULT_PLAN
    if arguments.portals is not None:
        plan = replace(plan, portals=arguments.portals)
    started = time.perf_counter()
    logging.getLogger().setLevel(logging.WARNING)  # one INFO line per portal would drown the progress
    watch = scenarios.SlowPathWatch()
    logging.getLogger("portals.provisioning").addHandler(watch)
    log(f"{'quick' if arguments.quick else 'default'} run: {plan}")
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bench-routing-") as cache_dir,
            throwaway_database() as database_name,
            override_settings(CACHES=bench_caches(Path(cache_dir)), DEBUG=False),  # DEBUG logs every query
            scenarios.refill_by_bench(),
        ):
            log(f"throwaway database {database_name} on {connection.settings_dict.get('HOST') or 'localhost'}")
            server_version = connection.pg_version
            figures, meta = _measure(plan, Path(cache_dir), database_name, settle=not arguments.no_settle)
    except BenchDatabaseBusy as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, SystemExit) as exc:  # SystemExit: SIGTERM, see bench.__main__
        print("bench: interrupted; the throwaway database was dropped", file=sys.stderr)
        if isinstance(exc, SystemExit):
            raise
        return 130
    wall = time.perf_counter() - started
    print(table(figures))
    log(f"done in {wall:.1f} s; throwaway database dropped")
    slow_path = watch.count + meta["server_slow_path_creates"]
    if slow_path:
        log(f"WARNING: {slow_path} create(s) found the spare pool empty and migrated inline (slow path)")
    if arguments.json:
        meta.update(
            quick=arguments.quick,
            wall_seconds=round(wall, 1),
            slow_path_creates=slow_path,
            postgresql=server_version,
            python=platform.python_version(),
            cpus=os.cpu_count(),
            settings=os.environ["DJANGO_SETTINGS_MODULE"],
        )
        json_write(arguments.json, figures, meta)
        log(f"figures written to {arguments.json}")
    return 0
