"""The embedded PostgreSQL server used when DATABASE_URL is unset.

pgserver ships PostgreSQL binaries inside its wheel, so a fresh checkout needs
nothing but `pip install`. The server is started once and left running
(`cleanup_mode=None`): runserver's reloader, gunicorn workers and pytest-xdist
workers each join the same server instead of racing to start and stop it.
"""

import contextlib
import warnings
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

DATABASE_NAME = "portalsite"


class EmbeddedDatabaseError(RuntimeError):
    """The embedded server could not be started or prepared."""


def embedded_database_settings(data_dir: Path) -> dict[str, Any]:
    """Start (or join) the server under `data_dir/pg` and return Django DATABASES settings."""
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (as for root); its /tmp fallback is fine.
        warnings.simplefilter("ignore")
        import pgserver  # imported here: deployments with DATABASE_URL never load it

    pgdata = data_dir / "pg"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(pgdata, cleanup_mode=None)  # type: ignore[attr-defined]  # untyped re-export
        socket_dir = server.get_postmaster_info().socket_dir
        _create_database_if_missing(server.get_uri("postgres"), DATABASE_NAME)
    except Exception as exc:  # pgserver raises bare subprocess/OS errors
        raise EmbeddedDatabaseError(
            f"cannot start the embedded PostgreSQL in {pgdata} ({type(exc).__name__}: {exc}); "
            f"see {pgdata / 'log'} or set DATABASE_URL"
        ) from exc
    return {
        "NAME": DATABASE_NAME,
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": str(socket_dir),
        "PORT": "",
    }


def _create_database_if_missing(admin_uri: str, name: str) -> None:
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists:
            return
        # Another process may create it between our check and our CREATE.
        with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
