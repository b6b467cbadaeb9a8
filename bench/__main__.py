"""`python -m bench [--quick] [--portals N] [--json FILE]`: see bench/README.md."""

import os
import signal
import sys
from types import FrameType


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds like Ctrl-C, so the throwaway database is still dropped


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portalsite.settings")
    signal.signal(signal.SIGTERM, _terminate)
    import django

    django.setup()
    from bench.cli import run  # imports models: only after setup

    return run(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
