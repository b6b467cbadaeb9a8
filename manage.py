#!/usr/bin/env python
"""Django's command-line utility for portalsite."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portalsite.settings")
    from django.core.management import execute_from_command_line
    from django.db import Error as DatabaseError

    from portalsite.embedded_db import EmbeddedDatabaseError

    try:
        execute_from_command_line(sys.argv)
    except EmbeddedDatabaseError as exc:
        sys.exit(f"error: {exc}")
    except DatabaseError as exc:
        from portalsite.db import database_unreachable_message

        message = database_unreachable_message(exc)
        if message is None:
            raise
        sys.exit(f"error: {message}")


if __name__ == "__main__":
    main()
