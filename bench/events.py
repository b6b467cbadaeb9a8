"""`python -m bench.events [--quick] [--json FILE]` (or `python -m bench --only events`): the audit log's cost.

See bench/README.md ("bench.events"). Works in its own throwaway database (`bench_events_portalsite`) on the
configured server, dropped at the end; everything runs in this process.

1. A bulk invite of 1,000 e-mails (half of them account holders, linked; half invited) into a fresh portal,
   through `portal_users_invite`: one event per person. Rounds alternate with the same invite while
   recording is switched off (`customer_portal.services.portal_record_many` replaced by a no-op), so the
   two differ only by the log. Target: the p50 with the log within 1.5x of the p50 without.
2. The invite's queries for 1,000 e-mails against 10: the log must not make them grow with N.
3. Events per second, each event its own transaction (`record`), from W threads (each its own connection)
   writing into one organization (they take turns on its chain head: the serialization) and, for
   comparison, into W organizations (no contention). Each chain is verified afterwards.
"""

import argparse
import logging
import sys
import tempfile
import threading
import time
import uuid
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any
from unittest import mock

from bench.entry import django_main

DATABASE_NAME = "bench_events_portalsite"
INVITE_TARGET_RATIO = 1.5


@dataclass(frozen=True)
class EventsPlan:
    rounds: int  # timed invites with the log, and as many without (after one warm-up each)
    invite_size: int
    writers: int  # threads of the events-per-second figures
    events_per_writer: int


DEFAULT_EVENTS = EventsPlan(rounds=7, invite_size=1000, writers=4, events_per_writer=500)
QUICK_EVENTS = EventsPlan(rounds=3, invite_size=1000, writers=4, events_per_writer=200)


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.events", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 invite rounds instead of 7, fewer events")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures to FILE as JSON")
    return parser.parse_args(argv)


def run(argv: list[str]) -> int:
    arguments = _arguments(argv)
    plan = QUICK_EVENTS if arguments.quick else DEFAULT_EVENTS
    logging.getLogger().setLevel(logging.WARNING)

    from django.conf import settings
    from django.test.utils import override_settings

    from bench import scenarios
    from bench.database import BenchDatabaseBusy, bench_caches, throwaway_database
    from bench.report import json_write, table
    from bench.scenarios import log

    started = time.perf_counter()
    log(f"bench.events: {'quick' if arguments.quick else 'default'} run: {plan}")
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bench-routing-") as cache_dir,
            throwaway_database(DATABASE_NAME) as database_name,
            override_settings(CACHES=bench_caches(Path(cache_dir)), DEBUG=False),
        ):
            log(f"throwaway database {database_name}")
            _organization, admin = scenarios.bench_org_create()
            scenarios.global_accounts_create(plan.invite_size // 2)
            scenarios.pool_ensure(settings.PORTAL_SPARE_POOL_SIZE)
            timings = _invites(admin, plan)
            queries = {count: _invite_queries(admin, count) for count in (10, plan.invite_size)}
            rates = {
                "one organization": _events_per_second(plan, organizations=1),
                "one organization each": _events_per_second(plan, organizations=plan.writers),
                "single writer": _events_per_second(replace(plan, writers=1), organizations=1),
            }
    except BenchDatabaseBusy as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2

    figures = _figures(timings, queries, rates, plan)
    print(table(figures))
    meta = {
        "plan": asdict(plan),
        "rates": {name: asdict(rate) | {"per_second": rate.per_second} for name, rate in rates.items()},
        "seconds": round(time.perf_counter() - started, 1),
    }
    if arguments.json:
        json_write(arguments.json, figures, meta)
    log(f"done in {meta['seconds']} s")
    return 0 if all(figure.passed is not False for figure in figures) else 1


def _without_log() -> AbstractContextManager[Any]:
    return mock.patch("customer_portal.services.portal_record_many", lambda events, **kwargs: [])


def _invites(admin: Any, plan: EventsPlan) -> dict[str, list[float]]:
    """Alternating invites with and without the log (which goes first alternates too); one warm-up each."""
    from bench import scenarios
    from bench.scenarios import log

    timings: dict[str, list[float]] = {"with": [], "without": []}
    log(f"invites of {plan.invite_size}: one warm-up each, then {plan.rounds} with the log and {plan.rounds} without")
    for index in range(plan.rounds + 1):
        order = ["with", "without"] if index % 2 else ["without", "with"]
        for name in order:
            with _without_log() if name == "without" else nullcontext():
                elapsed = scenarios.service_invite(admin=admin, count=plan.invite_size)
            if index:
                timings[name].append(elapsed)
    return timings


def _invite_queries(admin: Any, count: int) -> int:
    from bench import scenarios
    from events.models import AuditEvent

    before = AuditEvent.objects.count()
    queries = int(scenarios.service_invite(admin=admin, count=count, count_queries=True))
    recorded = AuditEvent.objects.count() - before
    if recorded != count + 1:  # one per person, and the fresh portal's portal.created
        raise RuntimeError(f"an invite of {count} recorded {recorded} events, not {count + 1}")
    return queries


@dataclass(frozen=True)
class Rate:
    writers: int
    organizations: int
    events: int
    seconds: float
    chains_intact: bool

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def _events_per_second(plan: EventsPlan, *, organizations: int) -> Rate:
    """`plan.writers` threads, each `plan.events_per_writer` single-event transactions, into `organizations`
    organizations (writer i into organization i mod organizations)."""
    from django.db import connections, transaction

    from bench.scenarios import log
    from events.services import Target, record
    from events.verification import audit_chain_verify

    organization_ids = [uuid.uuid4() for _ in range(organizations)]  # not foreign keys: no rows needed
    barrier = threading.Barrier(plan.writers + 1)
    errors: list[BaseException] = []

    def writer(index: int) -> None:
        organization_id = organization_ids[index % organizations]
        try:
            barrier.wait()
            for n in range(plan.events_per_writer):
                with transaction.atomic():
                    record(
                        action="portal.updated",
                        organization_id=organization_id,
                        target=Target("portal", str(index), f"writer {index} event {n}"),
                        changes={"name": [str(n), str(n + 1)]},
                    )
        except BaseException as exc:  # reported after the join
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(index,)) for index in range(plan.writers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"a writer failed: {errors[0]!r}")
    intact = all(audit_chain_verify(organization_id=oid).broken is None for oid in organization_ids)
    rate = Rate(plan.writers, organizations, plan.writers * plan.events_per_writer, round(seconds, 3), intact)
    log(f"  {rate.writers} writer(s) into {organizations} organization(s): {rate.per_second:.0f} events/s")
    return rate


def _figures(
    timings: dict[str, list[float]], queries: dict[int, int], rates: dict[str, Rate], plan: EventsPlan
) -> list[Any]:
    from bench.report import Figure, Spread

    with_log, without = Spread.of(timings["with"]), Spread.of(timings["without"])
    ratio = with_log.median / without.median
    small, large = queries[10], queries[plan.invite_size]
    contended, spread_out, single = rates["one organization"], rates["one organization each"], rates["single writer"]
    section = "audit log"
    return [
        Figure(
            "events_invite_service",
            f"portal_users_invite, {plan.invite_size} e-mails (half linked), one event per person",
            "ms",
            with_log,
            without,
            "recording off",
            f"p50 <= {INVITE_TARGET_RATIO}x",
            ratio <= INVITE_TARGET_RATIO,
            f"{ratio:.2f}x",
            section=section,
        ),
        Figure(
            "events_invite_queries",
            f"invite queries, {plan.invite_size} e-mails, with the log",
            "queries",
            Spread.of([large]),
            Spread.of([small]),
            "10 e-mails",
            "no more than for 10",
            large <= small,
            section=section,
        ),
        Figure(
            "events_rate_one_org",
            f"events/s, {contended.writers} writers into one organization (one chain: they take turns)",
            "events/s",
            Spread.of([contended.per_second]),
            Spread.of([spread_out.per_second]),
            f"{spread_out.writers} writers, one organization each",
            "chain intact",
            contended.chains_intact and spread_out.chains_intact,
            f"{contended.per_second / spread_out.per_second:.2f}x of uncontended",
            section=section,
        ),
        Figure(
            "events_rate_single_writer",
            "events/s, one writer (each event its own transaction)",
            "events/s",
            Spread.of([single.per_second]),
            None,
            "",
            "chain intact",
            single.chains_intact,
            section=section,
        ),
    ]


if __name__ == "__main__":
    sys.exit(django_main(lambda: run, sys.argv[1:]))
