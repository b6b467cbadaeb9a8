"""What the job benches (bench.emails, bench.webhooks) share: their command line, real workers timed until
a batch has arrived, and the end of a run (table, JSON, exit status)."""

import argparse
import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def arguments(argv: list[str], *, prog: str, doc: str, quick: str) -> argparse.Namespace:
    """`--quick` (what it changes: `quick`) and `--json FILE`."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures to FILE as JSON")
    return parser.parse_args(argv)


@contextlib.contextmanager
def bench_database(name: str, **overrides: Any) -> Iterator[tuple[str, Path]]:
    """The throwaway database `name` (dropped on exit) and a temporary routing-cache folder, with this process's
    settings pointed at them (DEBUG off, `overrides` applied). Raises BenchDatabaseBusy when it is in use."""
    from django.test.utils import override_settings

    from bench.database import bench_caches, throwaway_database

    with (
        tempfile.TemporaryDirectory(prefix="bench-routing-") as cache_dir,
        throwaway_database(name) as database_name,
        override_settings(CACHES=bench_caches(Path(cache_dir)), DEBUG=False, **overrides),
    ):
        yield database_name, Path(cache_dir)


def workers_until(
    arrived: Callable[[], Sequence[T]],
    *,
    expected: int,
    workers: int,
    concurrency: int,
    database_name: str,
    cache_dir: Path,
    timeout: float,
    what: str,
    **env: str,
) -> float:
    """Start `workers` `manage.py worker` processes and wait until `arrived()` holds `expected` items; then stop
    them (SIGTERM: each finishes what it holds). Returns when they were started (time.monotonic())."""
    from bench.server import BenchWorker

    start = time.monotonic()
    processes = [
        BenchWorker(database_name=database_name, cache_dir=cache_dir, concurrency=concurrency, **env)
        for _ in range(workers)
    ]
    try:
        while len(batch := arrived()) < expected:
            if time.monotonic() > start + timeout:
                tails = "\n".join(process.log_tail() for process in processes)
                raise RuntimeError(f"{len(batch)} of {expected} {what} in {timeout:g} s:\n{tails}")
            time.sleep(0.05)
    finally:
        for process in processes:
            process.stop()
    return start


def finish(figures: Sequence[Any], meta: dict[str, Any], *, json_path: Path | None, started: float) -> int:
    """Print the table, write the JSON when asked; 0 unless a figure missed its target."""
    from bench.report import json_write, table
    from bench.scenarios import log

    print(table(figures))
    meta = {**meta, "seconds": round(time.perf_counter() - started, 1)}
    if json_path:
        json_write(json_path, figures, meta)
    log(f"done in {meta['seconds']} s")
    return 0 if all(figure.passed is not False for figure in figures) else 1
