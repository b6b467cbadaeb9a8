"""Child of bench.migrate: `python -m bench.migrate_run <migrate_schemas arguments>`.

Runs exactly `manage.py migrate_schemas <arguments>` (an operator's command line, system checks
included), records each schema's duration through django-tenants' signals into the file named
by BENCH_MIGRATE_TIMES (forked multiprocessing workers inherit the receivers and append too),
and prints one JSON line: the command's own duration and how many tenant schemas it covered.
"""

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.entry import django_main

_started: dict[str, float] = {}


def _schema_started(sender: Any, schema_name: str, **kwargs: Any) -> None:
    _started[schema_name] = time.perf_counter()


def _schema_migrated(sender: Any, schema_name: str, **kwargs: Any) -> None:
    started = _started.pop(schema_name, None)
    if started is not None:
        with Path(os.environ["BENCH_MIGRATE_TIMES"]).open("a") as times:  # one short line: an atomic append
            times.write(f"{schema_name} {time.perf_counter() - started:.6f}\n")


def run(arguments: list[str]) -> int:
    from django.core.management import execute_from_command_line
    from django_tenants.signals import schema_migrated, schema_pre_migration
    from django_tenants.utils import get_public_schema_name

    from portals.models import Portal

    schema_pre_migration.connect(_schema_started, weak=False)
    schema_migrated.connect(_schema_migrated, weak=False)
    schemas = Portal.objects.exclude(schema_name=get_public_schema_name()).count()
    # argv[0] is manage.py: the subprocess executor spawns `manage.py migrate_schemas --schema ...` per tenant.
    argv = [str(Path(__file__).resolve().parent.parent / "manage.py"), "migrate_schemas", *arguments]
    started = time.perf_counter()
    execute_from_command_line(argv)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": round(seconds, 4), "schemas": schemas}))
    return 0


if __name__ == "__main__":
    # SIGTERM exits normally, so the multiprocessing pool's workers are stopped too.
    sys.exit(django_main(lambda: run, sys.argv[1:]))
