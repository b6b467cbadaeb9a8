"""Child of bench.migrate: `python -m bench.migrate_run <command> <arguments>`.

Runs exactly `manage.py <command> <arguments>` (an operator's command line, system checks
included), records each schema's duration and the RSS of the process that migrated it into the
file named by BENCH_MIGRATE_TIMES (`schema seconds pid rss_kib` lines), and prints one JSON line:
the command's own duration, how many tenant schemas there are, and the command's peak RSS.

`migrate_schemas`: django-tenants' schema_pre_migration / schema_migrated signals (forked
multiprocessing workers inherit the receivers and append too). `migrate_portals`: its
`portal_schema_migrated` signal, sent in the command's process with each worker's outcome.
"""

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.entry import django_main

_started: dict[str, float] = {}


def _status_kib(field: str) -> int:
    with Path("/proc/self/status").open() as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _write(schema_name: str, seconds: float, pid: int, rss_kib: int) -> None:
    with Path(os.environ["BENCH_MIGRATE_TIMES"]).open("a") as times:  # one short line: an atomic append
        times.write(f"{schema_name} {seconds:.6f} {pid} {rss_kib}\n")


def _schema_started(sender: Any, schema_name: str, **kwargs: Any) -> None:
    _started[schema_name] = time.perf_counter()


def _schema_migrated(sender: Any, schema_name: str, **kwargs: Any) -> None:
    started = _started.pop(schema_name, None)
    if started is not None:
        _write(schema_name, time.perf_counter() - started, os.getpid(), _status_kib("VmRSS"))


def _portal_schema_migrated(sender: Any, outcome: Any, **kwargs: Any) -> None:
    _write(outcome.schema_name, outcome.duration_ms / 1000, outcome.worker_pid, outcome.worker_rss_kib)


def run(arguments: list[str]) -> int:
    from django.core.management import execute_from_command_line
    from django_tenants.signals import schema_migrated, schema_pre_migration
    from django_tenants.utils import get_public_schema_name

    from portals.fleet import portal_schema_migrated
    from portals.models import Portal

    schema_pre_migration.connect(_schema_started, weak=False)
    schema_migrated.connect(_schema_migrated, weak=False)
    portal_schema_migrated.connect(_portal_schema_migrated, weak=False)
    schemas = Portal.objects.exclude(schema_name=get_public_schema_name()).count()
    # argv[0] is manage.py: the subprocess executor spawns `manage.py migrate_schemas --schema ...` per tenant.
    argv = [str(Path(__file__).resolve().parent.parent / "manage.py"), *arguments]
    started = time.perf_counter()
    execute_from_command_line(argv)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": round(seconds, 4), "schemas": schemas, "peak_rss_kib": _status_kib("VmHWM")}))
    return 0


if __name__ == "__main__":
    # SIGTERM exits normally, so the multiprocessing pool's workers are stopped too.
    sys.exit(django_main(lambda: run, sys.argv[1:]))
