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

from bench import endpoints, scenarios
from bench.database import BenchDatabaseBusy, bench_caches, database_copy, throwaway_database, using
from bench.database import settle as settle_database
from bench.load import WRK_MISSING, LoadResult, Target, wrk_available
from bench.migrate import MigrateRun, MigrationPackage, migrate_schemas, migration_package, run_command
from bench.report import Figure, Spread, at_least, at_most, json_write, table
from bench.scenarios import Round, log
from bench.server import BenchServer, BenchWorker
from portals.models import Portal
from portalsite.db import tenant_connection

SMALL = 10  # portals in the org for the "few portals" measurements


@dataclass(frozen=True)
class Plan:
    portals: int
    rounds: int  # create/delete rounds at each scale; figures pair round i at 10 with round i at N
    creates_per_round: int
    dt_creates_per_round: int
    http_creates: int
    invite_repeats: int
    users_list_repeats: int  # GET /v1/portal/{id}/users, whole list and one page, each
    load_rounds: int  # wrk runs per endpoint (bare, config, me take turns)
    load_seconds: int  # each wrk run
    memory_portals: int  # portals whose users the memory run's requests rotate over
    memory_requests: int  # sampled every tenth


DEFAULT_PLAN = Plan(
    portals=1000, rounds=6, creates_per_round=10, dt_creates_per_round=4, http_creates=40, invite_repeats=5,
    users_list_repeats=10, load_rounds=3, load_seconds=4, memory_portals=100, memory_requests=10_000,
)  # fmt: skip
QUICK_PLAN = Plan(
    portals=200, rounds=3, creates_per_round=7, dt_creates_per_round=3, http_creates=20, invite_repeats=3,
    users_list_repeats=5, load_rounds=2, load_seconds=2, memory_portals=20, memory_requests=2_000,
)  # fmt: skip
LOAD_WORKERS = 2
LOAD_CONNECTIONS = 4
# The throughput rows after the baseline (the bare Django project): label, and the target ratio to it (None: reported).
LOAD_ROWS: dict[str, tuple[str, float | None]] = {
    "bare": ("GET /bench/bare (no database), the project's middleware", None),
    "config": ("GET /v1/customer-portal/config, portal user", 0.5),
    "me": ("GET /v1/customer-portal/me, portal user", 0.5),
    "config_admin": ("GET /v1/customer-portal/config, org admin, portal host", 0.5),
    "config_admin_header": ("GET /v1/customer-portal/config, org admin, X-Portal-ID", 0.5),
    "users_admin": ("GET /v1/customer-portal/users?limit=50, org admin, portal host", 0.5),
    "users_admin_header": ("GET /v1/customer-portal/users?limit=50, org admin, X-Portal-ID", 0.5),
}
# Growth allowed over the second half of the memory run (5,000 requests by default: a leak of about
# 200 bytes per request or more shows). A worker's RSS drifts up for its first ~12,000 requests by
# well under that while the allocator reaches its high-water mark (see bench/README.md).
MEMORY_GROWTH_LIMIT_MIB = 1.0
# Fleet migrations: the process count of both sides, the no-op runs of migrate_portals (a few seconds
# each; migrate_schemas' no-op takes minutes at 1,000 schemas and runs once), and the targets.
FLEET_PROCESSES = 2
FLEET_NOOP_REPEATS = 3
FLEET_NOOP_TARGET = 50.0
FLEET_APPLY_TARGET = 5.0
FLEET_RSS_GROWTH_LIMIT_MIB = 1.0


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
    parser.add_argument(
        "--only",
        choices=["hot", "fleet", "events"],
        help="hot: only the hot-endpoint figures (users list, queries per request, throughput, memory), on one org; "
        "fleet: only the fleet-migration figures (grow to N portals, then migrate); "
        "events: the audit log's figures (bench.events)",
    )
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
            log(f"{plan.http_creates} x POST /v1/portal over HTTP (each waits for the worker's refill job)")
            with BenchWorker(database_name=database_name, cache_dir=cache_dir, concurrency=1):
                posts, floors = scenarios.http_creates(server=server, admin=admin, count=plan.http_creates)
            log(
                f"bulk invites of {scenarios.INVITE_BATCH} e-mails: {plan.invite_repeats} over HTTP, as many in-process"
            )
            http_invites = [scenarios.http_invite(server=server, admin=admin) for _ in range(plan.invite_repeats)]
            server_slow_path = server.slow_path_creates()
        service_invites = [scenarios.service_invite(admin=admin) for _ in range(plan.invite_repeats)]
        queries_batch = [scenarios.service_invite(admin=admin, count_queries=True) for _ in range(2)]
        queries_few = [scenarios.service_invite(admin=admin, count=10, count_queries=True) for _ in range(2)]
    hot_figures, hot_meta = _measure_hot(plan, cache_dir, database_name, admin=admin)
    migrate_figures = _measure_migrate(cache_dir, database_name, executors=True)

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
    figures = [replace(figure, section="portal lifecycle") for figure in figures]
    meta = {
        "plan": asdict(plan),
        "settled": settle,
        "existing_portals_at_end": scenarios.existing_portals(),
        "server_slow_path_creates": server_slow_path,
        **hot_meta,
    }
    return figures + hot_figures + migrate_figures, meta


def _measure_hot_only(plan: Plan, cache_dir: Path, database_name: str) -> tuple[list[Figure], dict[str, Any]]:
    """`--only hot`: the organization, its admin and the spare pool, then the hot-endpoint figures alone."""
    log("setting up: organization, admin, 500 global accounts, spare pool")
    _, admin = scenarios.bench_org_create()
    scenarios.global_accounts_create(scenarios.INVITE_BATCH // 2)
    scenarios.pool_ensure(settings.PORTAL_SPARE_POOL_SIZE)
    scenarios.populate(admin=admin, target=plan.memory_portals + 1)  # the memory run's portals
    figures, meta = _measure_hot(plan, cache_dir, database_name, admin=admin)
    return figures, {"plan": asdict(plan), "server_slow_path_creates": 0, **meta}


def _measure_hot(plan: Plan, cache_dir: Path, database_name: str, *, admin: Any) -> tuple[list[Figure], dict[str, Any]]:
    """The users list, queries per request, throughput and worker memory: gunicorn with 2 workers."""
    main_host = settings.MAIN_HOSTS[0]
    log(f"hot endpoints: a portal with {endpoints.PORTAL_USERS:,} users; queries per request, in-process")
    hot = endpoints.hot_portal_create(admin=admin)
    queries = endpoints.queries_per_request(admin=admin, hot=hot, main_host=main_host)
    meta: dict[str, Any] = {"wrk": wrk_available()}
    log(f"starting gunicorn with {LOAD_WORKERS} workers; GET /v1/portal/{{id}}/users x {plan.users_list_repeats}")
    with (
        BenchServer(database_name=database_name, cache_dir=cache_dir, workers=LOAD_WORKERS) as server,
        BenchServer(workers=LOAD_WORKERS, bare=True) as bare_django,
    ):
        server.wait_workers()
        bare_django.wait_workers()
        whole, page = endpoints.users_list_http(server=server, admin=admin, hot=hot, repeats=plan.users_list_repeats)
        load: dict[str, list[LoadResult]] = {}
        if wrk_available():
            log(f"wrk: {len(LOAD_ROWS) + 1} targets, {plan.load_rounds} x {plan.load_seconds} s each")
            member = endpoints.portal_login(server=server, hot=hot)
            admin_token = scenarios.bearer_token(admin)
            portal_id = str(hot.portal.id)
            targets = {
                "bare_django": (bare_django, Target(endpoints.BARE_PATH, main_host)),
                "bare": (server, Target(endpoints.BARE_PATH, main_host)),
                "config": (server, Target(endpoints.CONFIG_PATH, hot.host, member)),
                "me": (server, Target(endpoints.ME_PATH, hot.host, member)),
                "config_admin": (server, Target(endpoints.CONFIG_PATH, hot.host, admin_token)),
                "config_admin_header": (server, Target(endpoints.CONFIG_PATH, main_host, admin_token, portal_id)),
                "users_admin": (server, Target(endpoints.USERS_PAGE_PATH, hot.host, admin_token)),
                "users_admin_header": (server, Target(endpoints.USERS_PAGE_PATH, main_host, admin_token, portal_id)),
            }
            load = endpoints.throughput(
                targets=targets, rounds=plan.load_rounds, seconds=plan.load_seconds, connections=LOAD_CONNECTIONS
            )
    samples: list[endpoints.MemorySample] = []
    if wrk_available():
        portals = list(
            Portal.objects.filter(is_spare=False, organization=hot.portal.organization_id)
            .exclude(id=hot.portal.id)
            .order_by("created_at")[: plan.memory_portals]
        )
        targets_memory = endpoints.portal_user_tokens(portals=portals)
        log(f"memory: {plan.memory_requests:,} x GET config over {len(portals)} portals, fresh {LOAD_WORKERS} workers")
        with BenchServer(database_name=database_name, cache_dir=cache_dir, workers=LOAD_WORKERS) as server:
            samples = list(
                endpoints.memory_run(
                    server=server, targets=targets_memory, total=plan.memory_requests,
                    every=plan.memory_requests // 10, connections=LOAD_CONNECTIONS,
                )
            )  # fmt: skip
        meta["memory_samples"] = [asdict(sample) for sample in samples]
        meta["memory_portals"] = len(portals)
    else:
        log(f"WARNING: {WRK_MISSING}: no throughput or memory figures")
    figures = _users_figures(whole, page) + _query_figures(queries)
    if load:
        figures += _load_figures(load)
        meta["load"] = {name: [asdict(result) for result in results] for name, results in load.items()}
    if samples:
        figures.append(_memory_figure(samples, plan, portals=int(meta["memory_portals"])))
    return figures, meta


def _users_figures(whole: list[float], page: list[float]) -> list[Figure]:
    section = "hot endpoints, HTTP"
    users = f"{endpoints.PORTAL_USERS:,}"
    return [
        replace(_figure("users_whole", f"GET /v1/portal/{{id}}/users, {users} users, whole list", "ms",
                        Spread.of(whole), None, "", "<= 300 ms p50", at_most(300)), section=section),
        replace(_figure("users_page", f"GET /v1/portal/{{id}}/users?limit={endpoints.PAGE}, {users} users", "ms",
                        Spread.of(page), None, "", "<= 20 ms p50", at_most(20)), section=section),
    ]  # fmt: skip


def _query_figures(queries: list[endpoints.QueryCount]) -> list[Figure]:
    figures = []
    for count in queries:
        pinned = count.pinned is not None
        if count.error:
            log(f"WARNING: {count.label} failed: {count.error}")
        figures.append(
            Figure(
                key=f"queries_{count.key}",
                label=count.label,
                unit="queries",
                ours=Spread.of([count.warm]),
                comparison=Spread.of([count.cold]),
                comparison_label="first call",
                target=f"<= {count.pinned} (pinned by tests)" if pinned else "reported",
                passed=False if count.error else count.warm <= count.pinned if pinned else None,  # type: ignore[operator]
                verdict_note=f"failed: {count.error[:60]}" if count.error else "",
                section="queries per request (second call, in-process)",
            )
        )
    return figures


def _load_figures(load: dict[str, list[LoadResult]]) -> list[Figure]:
    """Each row as a ratio to the bare Django project, measured in the same rounds (median of the per-round
    ratios); the project's own no-database view is reported the same way: what the middleware stack costs."""
    section = f"throughput: wrk, {LOAD_CONNECTIONS} connections, gunicorn {LOAD_WORKERS} sync workers"
    baseline = load["bare_django"]
    baseline_spread = Spread.of([result.per_second for result in baseline])
    baseline_errors = sum(result.errors for result in baseline)
    figures = [
        Figure("load_bare_django", "bare Django project (CommonMiddleware, one JsonResponse view)", "req/s",
               baseline_spread, None, "", "0 errors", baseline_errors == 0, f"{baseline_errors} errors", section),
    ]  # fmt: skip
    for name, (label, target) in LOAD_ROWS.items():
        results = load[name]
        ratio = statistics.median(
            ours.per_second / floor.per_second for ours, floor in zip(results, baseline, strict=True)
        )
        errors = sum(result.errors for result in results)
        passed = errors == 0 and (target is None or ratio >= target)
        wanted = f">= {target}x baseline p50, 0 errors" if target is not None else "reported, 0 errors"
        figures.append(
            Figure(f"load_{name}", label, "req/s", Spread.of([result.per_second for result in results]),
                   baseline_spread, "bare Django project", wanted, passed, f"{ratio:.2f}x, {errors} errors", section)
        )  # fmt: skip
    return figures


def _memory_figure(samples: list[endpoints.MemorySample], plan: Plan, *, portals: int) -> Figure:
    """The worker whose RSS ends highest; growth is judged on every worker over the second half of the
    run (the first half is the warm-up: imports, caches and the allocator's high-water mark settle)."""
    mib = 1024
    pids = list(samples[0].rss_kib)
    half = samples[len(samples) // 2]
    growth = {pid: (samples[-1].rss_kib[pid] - half.rss_kib[pid]) / mib for pid in pids}
    worker = max(pids, key=lambda pid: samples[-1].rss_kib[pid])
    series = [sample.rss_kib[worker] / mib for sample in samples[1:]]
    note = (
        f"{series[0]:.1f} -> {series[-1]:.1f} MiB; from {half.requests:,} to {samples[-1].requests:,} requests: "
        + ", ".join(f"{growth[pid]:+.2f}" for pid in pids)
    )
    return Figure(
        "memory_worker_rss",
        f"worker RSS over {plan.memory_requests:,} x GET config, {portals} portals",
        "MiB",
        Spread.of(series),
        Spread.of([samples[0].rss_kib[worker] / mib]),
        "before the first request",
        f"second half grows <= {MEMORY_GROWTH_LIMIT_MIB:g} MiB",
        max(growth.values()) <= MEMORY_GROWTH_LIMIT_MIB,
        note,
        "memory: gunicorn worker VmRSS, sampled every tenth of the requests",
    )


def _measure_fleet_only(
    plan: Plan, cache_dir: Path, database_name: str, *, settle: bool
) -> tuple[list[Figure], dict[str, Any]]:
    """`--only fleet`: the organization grown to N portals (and the spare pool), then the fleet figures."""
    log("setting up: organization, admin, spare pool")
    _, admin = scenarios.bench_org_create()
    scenarios.pool_ensure(settings.PORTAL_SPARE_POOL_SIZE)
    log(f"growing to {plan.portals} portals")
    scenarios.populate(admin=admin, target=plan.portals)
    if settle:
        log(f"settled: {settle_database(checkpoint=True)}")
    figures = _measure_migrate(cache_dir, database_name, executors=False)
    meta = {"plan": asdict(plan), "settled": settle, "only": "fleet", "existing_portals_at_end": plan.portals,
            "server_slow_path_creates": 0}  # fmt: skip
    return figures, meta


def _measure_migrate(cache_dir: Path, database_name: str, *, executors: bool) -> list[Figure]:
    """With `executors`: one new tenant migration over every schema, with the standard executor, then the
    next one with the multiprocessing executor (TENANT_MULTIPROCESSING_MAX_PROCESSES=2). Then the fleet
    figures: migrate_portals against migrate_schemas, in the same package of throwaway migrations."""
    schemas = Portal.objects.exclude(schema_name="public").count()
    figures = []
    with migration_package(2 if executors else 0) as package:
        if executors:
            log(f"migrate_schemas: one new tenant migration over {schemas} schemas, standard executor")
            standard = migrate_schemas(package=package, executor="standard", database_name=database_name,
                                       cache_dir=cache_dir)  # fmt: skip
            log(f"migrate_schemas: the next one, multiprocessing executor (2 processes): {standard.seconds:.1f} s "
                "before")  # fmt: skip
            parallel = migrate_schemas(package=package, executor="multiprocessing", database_name=database_name,
                                       cache_dir=cache_dir)  # fmt: skip
            figures += _migrate_figures(standard, parallel)
        figures += _measure_fleet(package, cache_dir, database_name, schemas=schemas)
    return figures


def _measure_fleet(package: MigrationPackage, cache_dir: Path, database_name: str, *, schemas: int) -> list[Figure]:
    """migrate_portals against migrate_schemas over every schema (public, portals, spares), each the command
    line an operator runs, side by side: one new AddField + AddIndex migration with 2 processes each
    (multiprocessing executor; --parallel 2), then nothing to apply (the standard executor)."""

    def run(*arguments: str, label: str) -> MigrateRun:
        return run_command(package=package, arguments=list(arguments), label=label, database_name=database_name,
                           cache_dir=cache_dir)  # fmt: skip

    # The executor runs above migrated tenants only: bring the public schema level first, untimed.
    run("migrate_schemas", "--shared", "--noinput", label="shared")
    name = package.add()
    log(f"fleet: {name} (AddField + index) over {schemas} schemas + public, "
        f"migrate_schemas --executor=multiprocessing ({FLEET_PROCESSES} processes)")  # fmt: skip
    theirs = run("migrate_schemas", "--executor=multiprocessing", "--noinput", label="multiprocessing")
    name = package.add()
    log(f"fleet: {name}, migrate_portals --parallel {FLEET_PROCESSES} ({theirs.seconds:.1f} s before)")
    ours = run("migrate_portals", f"--parallel={FLEET_PROCESSES}", label="migrate_portals")
    log(f"fleet: nothing to apply, migrate_portals x {FLEET_NOOP_REPEATS} around one migrate_schemas "
        f"({ours.seconds:.1f} s before)")  # fmt: skip
    noop_ours = [run("migrate_portals", label="migrate_portals")]
    noop_theirs = run("migrate_schemas", "--noinput", label="standard")
    noop_ours += [run("migrate_portals", label="migrate_portals") for _ in range(FLEET_NOOP_REPEATS - 1)]
    if len(ours.per_schema_ms) != schemas + 1:
        raise RuntimeError(f"migrate_portals migrated {len(ours.per_schema_ms)} of {schemas + 1} schemas")
    for one in noop_ours:
        if one.per_schema_ms:
            raise RuntimeError(f"migrate_portals found {len(one.per_schema_ms)} schema(s) to migrate in a no-op run")
    return _fleet_figures(ours=ours, theirs=theirs, noop_ours=noop_ours, noop_theirs=noop_theirs)


def _worker_rss(run: MigrateRun) -> dict[int, list[float]]:
    """Each worker's VmRSS (MiB) after each of its schemas, in order; the public schema (migrated by the
    command's own process in both commands) left out."""
    series: dict[int, list[float]] = {}
    for schema, pid, kib in run.rss_kib:
        if schema != "public":
            series.setdefault(pid, []).append(kib / 1024)
    return series


def _rss_growth(samples: list[float]) -> float:
    """Median of the last tenth of the samples minus the median of the first tenth (MiB)."""
    tenth = max(len(samples) // 10, 1)
    return statistics.median(samples[-tenth:]) - statistics.median(samples[:tenth])


def _fleet_figures(
    *, ours: MigrateRun, theirs: MigrateRun, noop_ours: list[MigrateRun], noop_theirs: MigrateRun
) -> list[Figure]:
    schemas = ours.schemas + 1  # and the public schema
    section = f"fleet migrations: migrate_portals vs migrate_schemas, {schemas} schemas (portals, spares, public)"
    noop = Spread.of([run.seconds for run in noop_ours])
    noop_ratio = noop_theirs.seconds / noop.median
    apply_ratio = theirs.seconds / ours.seconds
    ours_rss, theirs_rss = _worker_rss(ours), _worker_rss(theirs)
    growth = {pid: _rss_growth(series) for pid, series in ours_rss.items()}
    their_growth = {pid: _rss_growth(series) for pid, series in theirs_rss.items()}
    rss_note = "; ".join(
        f"{series[0]:.1f} -> {series[-1]:.1f} MiB over {len(series)} schemas ({growth[pid]:+.2f})"
        for pid, series in ours_rss.items()
    )
    their_note = ", ".join(f"{value:+.2f}" for value in their_growth.values())

    def per_schema(seconds: float) -> str:
        return f"{seconds * 1000 / schemas:.1f}"

    return [
        Figure("fleet_noop", "nothing to apply, migrate_portals vs migrate_schemas (standard)", "s", noop,
               Spread.of([noop_theirs.seconds]), "migrate_schemas", f">= {FLEET_NOOP_TARGET:g}x faster (ratio)",
               noop_ratio >= FLEET_NOOP_TARGET,
               f"{noop_ratio:.0f}x; {per_schema(noop.median)} vs {per_schema(noop_theirs.seconds)} ms/schema",
               section),
        Figure("fleet_apply", f"AddField + index, --parallel {FLEET_PROCESSES} vs multiprocessing executor "
               f"({FLEET_PROCESSES} processes)", "s", Spread.of([ours.seconds]), Spread.of([theirs.seconds]),
               "migrate_schemas", f">= {FLEET_APPLY_TARGET:g}x faster (ratio)", apply_ratio >= FLEET_APPLY_TARGET,
               f"{apply_ratio:.1f}x; {per_schema(ours.seconds)} vs {per_schema(theirs.seconds)} ms/schema", section),
        Figure("fleet_schema", "one schema's migrate, in its worker", "ms", Spread.of(ours.per_schema_ms),
               Spread.of(theirs.per_schema_ms), "migrate_schemas worker", "reported", None, "", section),
        Figure("fleet_worker_rss", "worker RSS after each schema, AddField + index run", "MiB",
               Spread.of([value for series in ours_rss.values() for value in series]),
               Spread.of([value for series in theirs_rss.values() for value in series]),
               "migrate_schemas workers", f"flat: last tenth - first tenth <= {FLEET_RSS_GROWTH_LIMIT_MIB:g} MiB "
               "on every worker", bool(growth) and max(growth.values()) <= FLEET_RSS_GROWTH_LIMIT_MIB,
               f"{rss_note}; migrate_schemas workers {their_note}", section),
        Figure("fleet_command_rss", "the command's own process, peak RSS (VmHWM)", "MiB",
               Spread.of([ours.peak_rss_kib / 1024]), Spread.of([theirs.peak_rss_kib / 1024]), "migrate_schemas",
               "reported", None, "", section),
    ]  # fmt: skip


def _migrate_figures(standard: MigrateRun, parallel: MigrateRun) -> list[Figure]:
    section = "migrate_schemas: one new tenant migration over every schema"
    speedup = standard.seconds / parallel.seconds
    return [
        Figure("migrate_standard", f"standard executor, {standard.schemas} schemas", "s",
               Spread.of([standard.seconds]), None, "", "reported", None,
               f"{standard.per_portal_ms:.1f} ms/portal", section),
        Figure("migrate_multiprocessing", f"multiprocessing executor (2 processes), {parallel.schemas} schemas", "s",
               Spread.of([parallel.seconds]), Spread.of([standard.seconds]), "standard", "reported", None,
               f"{parallel.per_portal_ms:.1f} ms/portal, {speedup:.2f}x", section),
        Figure("migrate_schema_standard", "one schema's migrate, standard", "ms",
               Spread.of(standard.per_schema_ms), None, "", "reported", None, "", section),
        Figure("migrate_schema_multiprocessing", "one schema's migrate, multiprocessing (in its worker)", "ms",
               Spread.of(parallel.per_schema_ms), Spread.of(standard.per_schema_ms), "standard", "reported", None,
               "", section),
    ]  # fmt: skip


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
    if arguments.only == "events":  # its own throwaway database and plan (bench/events.py)
        from bench import events

        return events.run(
            [*(["--quick"] if arguments.quick else []), *(["--json", str(arguments.json)] if arguments.json else [])]
        )
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
        ):
            log(f"throwaway database {database_name} on {connection.settings_dict.get('HOST') or 'localhost'}")
            server_version = tenant_connection.pg_version
            if arguments.only == "hot":
                figures, meta = _measure_hot_only(plan, Path(cache_dir), database_name)
            else:
                measure = _measure_fleet_only if arguments.only == "fleet" else _measure
                figures, meta = measure(plan, Path(cache_dir), database_name, settle=not arguments.no_settle)
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
