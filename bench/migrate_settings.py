"""Settings of the `migrate_schemas` child a bench run starts (bench.migrate): the bench server's
settings, with customer_portal's migrations read from the run's throwaway package.

BENCH_MIGRATIONS_PACKAGE names that package (its folder is on PYTHONPATH); the parallel executor
runs two processes, one per core of the machine the targets are set for.
"""

import os
from importlib import import_module

_server = import_module("bench.server_settings")
globals().update({name: value for name, value in vars(_server).items() if name.isupper()})

MIGRATION_MODULES = {"customer_portal": os.environ["BENCH_MIGRATIONS_PACKAGE"]}
TENANT_MULTIPROCESSING_MAX_PROCESSES = 2
