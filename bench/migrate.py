"""One new tenant migration over every portal, with django-tenants' executors or with migrate_portals.

The application gains no migration: the run writes a throwaway migrations package into a temporary
folder (copies of customer_portal's migrations, then trivial ones: each adds a nullable column to
the settings table) and the child process that runs `migrate_schemas` points MIGRATION_MODULES at
it (bench.migrate_settings). Each executor applies the next one of them to every schema (portals
and spares), so each run is "one new tenant migration over N portals".

The child is `python -m bench.migrate_run`, which runs the same command line as
`python manage.py migrate_schemas customer_portal <name> --tenant --executor=<x> --noinput`
(system checks included, as an operator's run has them) and records each schema's own duration
through django-tenants' schema_pre_migration / schema_migrated signals. The fleet figures run
other command lines the same way (`run_command`): `migrate_schemas` over everything and
`migrate_portals`, whose per-schema outcomes (duration, worker pid and RSS) come from its
`portal_schema_migrated` signal. `MigrationPackage.add` writes one more migration just before a
run, so a command that migrates to the latest (no target) applies exactly that one.
"""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path

from django.conf import settings
from django.db.migrations.loader import MigrationLoader

from bench.server import die_with_parent
from portalsite.db import database_url

APP = "customer_portal"
# AddField + an index on it: the fleet figures' migration (two operations, one index).
INDEXED_TEMPLATE = '''"""Written by bench.migrate for one run; never part of the application."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = {dependencies!r}

    operations = [
        migrations.AddField(
            model_name="portalsettings",
            name="bench_note_{number}",
            field=models.IntegerField(null=True),
        ),
        migrations.AddIndex(
            model_name="portalsettings",
            index=models.Index(fields=["bench_note_{number}"], name="bench_note_{number}_idx"),
        ),
    ]
'''
PACKAGE = "bench_customer_portal_migrations"
MIGRATION_TEMPLATE = '''"""Written by bench.migrate for one run; never part of the application."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = {dependencies!r}

    operations = [
        migrations.AddField(
            model_name="portalsettings",
            name="bench_note_{number}",
            field=models.TextField(blank=True, null=True),
        ),
    ]
'''


@dataclass(frozen=True)
class MigrateRun:
    executor: str
    seconds: float  # the command itself (the child's interpreter and Django start-up excluded)
    schemas: int
    per_schema_ms: list[float]  # each schema's migrate, as seen inside the process that ran it
    # (schema, pid, VmRSS KiB) of the process that migrated each schema, right after it, in the order they finished
    rss_kib: list[tuple[str, int, int]] = field(default_factory=list)
    peak_rss_kib: int = 0  # the command's own process (VmHWM)

    @property
    def per_portal_ms(self) -> float:
        return self.seconds * 1000 / max(self.schemas, 1)


@dataclass
class MigrationPackage:
    """A throwaway copy of the app's migrations plus `names`, importable from `root`."""

    root: Path
    names: list[str]
    base: list[tuple[str, str]]  # the app's own latest migration
    applied: int = 0

    def next_name(self) -> str:
        name = self.names[self.applied]
        self.applied += 1
        return name

    def add(self) -> str:
        """Write one more migration (AddField + AddIndex) after the last one; the next run applies it."""
        number = len(self.names) + 1
        name = f"0900_bench_{number}"
        dependencies = [(APP, self.names[-1])] if self.names else self.base
        path = self.root / PACKAGE / f"{name}.py"
        path.write_text(INDEXED_TEMPLATE.format(dependencies=dependencies, number=number))
        self.names.append(name)
        self.applied = len(self.names)
        return name


@contextlib.contextmanager
def migration_package(count: int) -> Iterator[MigrationPackage]:
    with tempfile.TemporaryDirectory(prefix="bench-migrations-") as root:
        source = Path(import_module(f"{APP}.migrations").__file__).parent  # type: ignore[arg-type]
        package = Path(root) / PACKAGE
        package.mkdir()
        for file in source.glob("*.py"):
            shutil.copy(file, package / file.name)
        dependencies = base = sorted(MigrationLoader(None, ignore_no_migrations=True).graph.leaf_nodes(APP))
        names = []
        for number in range(1, count + 1):
            name = f"0900_bench_{number}"
            (package / f"{name}.py").write_text(MIGRATION_TEMPLATE.format(dependencies=dependencies, number=number))
            dependencies = [(APP, name)]
            names.append(name)
        yield MigrationPackage(root=Path(root), names=names, base=base)


def migrate_schemas(
    *, package: MigrationPackage, executor: str, database_name: str, cache_dir: Path, parallel: int | None = None
) -> MigrateRun:
    """Apply the package's next migration to every tenant schema with `executor`; returns its timings."""
    target = package.next_name()
    arguments = ["migrate_schemas", APP, target, "--tenant", f"--executor={executor}", "--noinput"]
    if parallel is not None:
        arguments.append(f"--parallel={parallel}")
    return run_command(package=package, arguments=arguments, label=executor, database_name=database_name,
                       cache_dir=cache_dir)  # fmt: skip


def run_command(
    *, package: MigrationPackage, arguments: list[str], label: str, database_name: str, cache_dir: Path
) -> MigrateRun:
    """`manage.py <arguments> --verbosity 0` in a child with the package's migrations; returns its timings."""
    with tempfile.NamedTemporaryFile(prefix="bench-migrate-", suffix=".times", delete=False) as times:
        times_path = Path(times.name)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.migrate_settings",
        "BENCH_BASE_SETTINGS": os.environ["DJANGO_SETTINGS_MODULE"],
        "BENCH_DATABASE_NAME": database_name,
        "BENCH_CACHE_DIR": str(cache_dir),
        "BENCH_MIGRATIONS_PACKAGE": PACKAGE,
        "BENCH_MIGRATE_TIMES": str(times_path),
        "PYTHONPATH": os.pathsep.join([str(package.root), str(settings.BASE_DIR)]),
        "DEBUG": "false",
        # Production mode starts only with both (the bench's own settings then pick its database).
        "DATABASE_URL": database_url(),
        "SECRET_KEY": settings.SECRET_KEY,
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "bench.migrate_run", *arguments, "--verbosity", "0"]
    try:
        done = subprocess.run(  # noqa: S603
            command, cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=3600, check=False,
            preexec_fn=die_with_parent,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(arguments)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        lines = [line.split() for line in times_path.read_text().splitlines() if line.strip()]
    finally:
        times_path.unlink(missing_ok=True)
    return MigrateRun(
        executor=label,
        seconds=result["seconds"],
        schemas=result["schemas"],
        per_schema_ms=[float(line[1]) * 1000 for line in lines],
        rss_kib=[(line[0], int(line[2]), int(line[3])) for line in lines],
        peak_rss_kib=result["peak_rss_kib"],
    )
