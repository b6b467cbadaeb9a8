"""`python -m bench [--quick] [--portals N] [--json FILE]`: see bench/README.md."""

import sys
from collections.abc import Callable

from bench.entry import django_main


def _run() -> Callable[[list[str]], int]:
    from bench.cli import run  # imports models: only after setup

    return run


if __name__ == "__main__":
    sys.exit(django_main(_run, sys.argv[1:]))
