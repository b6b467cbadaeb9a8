"""Start-up shared by the bench commands: Django set up, and SIGTERM unwinding like Ctrl-C."""

import os
import signal
from collections.abc import Callable
from types import FrameType


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds like Ctrl-C, so throwaway databases and servers are cleaned up


def django_main(load_run: Callable[[], Callable[[list[str]], int]], argv: list[str]) -> int:
    """Set Django up, then call the command's `run` (imported by `load_run`: it imports models)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portalsite.settings")
    signal.signal(signal.SIGTERM, _terminate)
    import django

    django.setup()
    return load_run()(argv)
