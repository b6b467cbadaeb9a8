"""Settings of the HTTP server a bench run starts: the project's settings, pointed at the run's database.

Set by bench.server (never by hand): BENCH_BASE_SETTINGS (the settings module of the run),
BENCH_DATABASE_NAME (the throwaway database) and BENCH_CACHE_DIR (the run's routing cache).
"""

import copy
import os
from importlib import import_module
from pathlib import Path

from bench.database import bench_caches

_base = import_module(os.environ.get("BENCH_BASE_SETTINGS", "portalsite.settings"))
globals().update({name: value for name, value in vars(_base).items() if name.isupper()})

DATABASES = copy.deepcopy(_base.DATABASES)
DATABASES["default"]["NAME"] = os.environ["BENCH_DATABASE_NAME"]
CACHES = bench_caches(Path(os.environ["BENCH_CACHE_DIR"]))
# The main hosts also serve GET /bench/bare (no database access): the throughput figures' floor.
PUBLIC_SCHEMA_URLCONF = "bench.urls"
