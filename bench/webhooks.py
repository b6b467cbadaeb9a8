"""`python -m bench.webhooks [--quick] [--json FILE]`: webhook deliveries per second, real workers, a local receiver.

See bench/README.md ("bench.webhooks"). Works in its own throwaway database (`bench_webhooks_portalsite`) on
the configured server, dropped at the end; a real HTTP receiver (tests/webhook_receiver.py) listens on
loopback in this process and takes 20 ms to answer each delivery; `manage.py worker` runs as the
deployment runs it.

One organization, one endpoint (every event). A batch of events is recorded the way a bulk invite
records them (`record_many`, one transaction: its deliveries and their jobs are queued with it); then
one worker is started and timed until the receiver has every delivery of the batch; then another
batch with two workers; three times each (`--quick`: once, batches of 300). Each delivery must arrive
exactly once (distinct `webhook-id`s) and verify with the endpoint's secret through the
`standardwebhooks` package, as a receiver would check it.
"""

import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import job_runs
from bench.entry import django_main

DATABASE_NAME = "bench_webhooks_portalsite"
RECEIVER_DELAY_SECONDS = 0.020
DELIVERY_TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class WebhookPlan:
    batch: int  # events recorded in one transaction, each a delivery to the one endpoint
    worker_concurrency: int  # jobs each worker runs at once
    repeats: int  # batches per worker count, the counts taking turns (1, 2, 1, 2, ...)


DEFAULT_WEBHOOKS = WebhookPlan(batch=1000, worker_concurrency=4, repeats=3)
QUICK_WEBHOOKS = WebhookPlan(batch=300, worker_concurrency=4, repeats=1)


@dataclass(frozen=True)
class WebhookRun:
    workers: int
    received: int  # requests of this batch the receiver got
    distinct: int  # distinct webhook-id among them: == received when none came twice
    verified: int  # of them, signatures the standardwebhooks verifier accepted
    expected: int
    succeeded: int  # deliveries of the batch `succeeded` in the database afterwards
    first_to_last_seconds: float
    start_to_last_seconds: float

    @property
    def per_second(self) -> float:
        return (self.received - 1) / self.first_to_last_seconds if self.first_to_last_seconds else 0.0

    @property
    def complete(self) -> bool:
        return self.received == self.distinct == self.verified == self.expected == self.succeeded


def run(argv: list[str]) -> int:
    arguments = job_runs.arguments(
        argv, prog="python -m bench.webhooks", doc=__doc__ or "", quick="batches of 300 events instead of 1,000"
    )
    plan = QUICK_WEBHOOKS if arguments.quick else DEFAULT_WEBHOOKS
    logging.getLogger().setLevel(logging.WARNING)

    from bench import scenarios
    from bench.database import BenchDatabaseBusy
    from bench.scenarios import log
    from events.webhook_services import webhook_endpoint_create
    from tests.webhook_receiver import Reply, WebhookReceiver

    started = time.perf_counter()
    log(f"bench.webhooks: {'quick' if arguments.quick else 'default'} run: {plan}")
    allowed = {"WEBHOOK_ALLOW_HTTP": True, "WEBHOOK_ALLOW_PRIVATE_NETWORKS": True}
    try:
        with (
            job_runs.bench_database(DATABASE_NAME, **allowed) as (database_name, cache_dir),
            WebhookReceiver(default=Reply(status=204, delay=RECEIVER_DELAY_SECONDS)) as receiver,
        ):
            log(f"throwaway database {database_name}; receiver on {receiver.url()}, "
                f"{RECEIVER_DELAY_SECONDS * 1000:.0f} ms an answer")  # fmt: skip
            organization, _admin = scenarios.bench_org_create()
            endpoint = webhook_endpoint_create(organization=organization, url=receiver.url())
            runs = [
                _run(workers=count, organization=organization, endpoint=endpoint, receiver=receiver, plan=plan,
                     database_name=database_name, cache_dir=cache_dir)
                for _ in range(plan.repeats) for count in (1, 2)
            ]  # fmt: skip
    except BenchDatabaseBusy as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2

    meta = {
        "plan": asdict(plan),
        "receiver_delay_ms": RECEIVER_DELAY_SECONDS * 1000,
        "runs": [asdict(one) | {"per_second": one.per_second} for one in runs],
    }
    return job_runs.finish(_figures(runs, plan), meta, json_path=arguments.json, started=started)


def _run(
    *,
    workers: int,
    organization: Any,
    endpoint: Any,
    receiver: Any,
    plan: WebhookPlan,
    database_name: str,
    cache_dir: Path,
) -> WebhookRun:
    from django.db import transaction
    from standardwebhooks import Webhook, WebhookVerificationError

    from bench.scenarios import log
    from events.services import Pending, Target, record_many
    from events.webhook_models import WebhookDelivery

    receiver.clear()
    with transaction.atomic():
        events = record_many(
            organization_id=organization.id,
            events=[
                Pending(action="portal_user.invited", target=Target(type="portal_user", id=str(n), label=f"p{n}"))
                for n in range(plan.batch)
            ],
        )
    ids = {str(event.id) for event in events}
    log(f"{plan.batch} events recorded, a delivery each; {workers} worker(s), concurrency {plan.worker_concurrency}")
    start = job_runs.workers_until(
        lambda: [r for r in receiver.received() if r.headers.get("webhook-id") in ids],
        expected=plan.batch,
        workers=workers,
        concurrency=plan.worker_concurrency,
        database_name=database_name,
        cache_dir=cache_dir,
        timeout=DELIVERY_TIMEOUT_SECONDS,
        what="deliveries",
        WEBHOOK_ALLOW_HTTP="true",
        WEBHOOK_ALLOW_PRIVATE_NETWORKS="true",
    )
    batch = [r for r in receiver.received() if r.headers.get("webhook-id") in ids]  # anything sent twice shows
    verifier, verified = Webhook(endpoint.secret), 0
    for request in batch:
        try:
            verifier.verify(request.body, request.headers)
        except WebhookVerificationError:
            continue
        verified += 1
    times = sorted(request.received_at for request in batch)
    one = WebhookRun(
        workers=workers,
        received=len(batch),
        distinct=len({request.headers["webhook-id"] for request in batch}),
        verified=verified,
        expected=plan.batch,
        succeeded=WebhookDelivery.objects.filter(event_id__in=ids, status="succeeded").count(),
        first_to_last_seconds=round(times[-1] - times[0], 3),
        start_to_last_seconds=round(times[-1] - start, 3),
    )
    log(
        f"  {one.received} deliveries ({one.distinct} distinct, {one.verified} verified) in "
        f"{one.first_to_last_seconds:.1f} s first to last: {one.per_second:.0f} deliveries/s"
    )
    return one


def _figures(runs: list[WebhookRun], plan: WebhookPlan) -> list[Any]:
    from bench.report import Figure, Spread

    figures = []
    for workers in (1, 2):
        mine = [one for one in runs if one.workers == workers]
        plural = "s" if workers > 1 else ""
        figures.append(
            Figure(
                f"webhook_delivery_{workers}_worker{plural}",
                f"webhook deliveries, {workers} worker{plural} x concurrency {plan.worker_concurrency}, "
                f"receiver 20 ms an answer, first to last of {plan.batch}",
                "deliveries/s",
                Spread.of([one.per_second for one in mine]),
                None,
                "",
                f"all {plan.batch} arrive once, signed",
                all(one.complete for one in mine),
                f"of {len(mine) * plan.batch}: {sum(one.received for one in mine)} arrived, "
                f"{sum(one.distinct for one in mine)} distinct, {sum(one.verified for one in mine)} verified, "
                f"{sum(one.succeeded for one in mine)} succeeded",
                section="webhooks",
            )
        )
    return figures


if __name__ == "__main__":
    sys.exit(django_main(lambda: run, sys.argv[1:]))
