"""Helpers about the database connection itself (not its data)."""

import functools
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar, cast

from django.db import OperationalError, connection, models

if TYPE_CHECKING:
    from portalsite.db_backend.base import DatabaseWrapper

T = TypeVar("T")

# Django's default connection as what it is (settings' ENGINE): django-tenants' wrapper, which knows its
# schema, with our additions. The same proxy as `django.db.connection`, typed once instead of at each use.
tenant_connection = cast("DatabaseWrapper", connection)


# Portal schemas one statement may touch: each schema's tables take locks until the statement ends, in the
# lock table every session shares (max_locks_per_transaction x connections: 6,400 by default), and one
# statement over thousands of schemas would exhaust it. Statements over many schemas go in batches of this.
SCHEMAS_PER_STATEMENT = 200


def schema_batches(items: Sequence[T]) -> Iterator[Sequence[T]]:
    """`items` (portals or schemas) in batches of SCHEMAS_PER_STATEMENT, one statement each."""
    for start in range(0, len(items), SCHEMAS_PER_STATEMENT):
        yield items[start : start + SCHEMAS_PER_STATEMENT]


@functools.cache
def model_attnames(model: type[models.Model]) -> list[str]:
    """The model's concrete columns' attribute names, in the order hand-written SQL selects them for `from_db`."""
    return [model_field.attname for model_field in model._meta.concrete_fields]


def database_display_url() -> str:
    """The default database as a URL without its password, for error messages."""
    params = connection.settings_dict
    user = f"{params['USER']}@" if params.get("USER") else ""
    host = params.get("HOST") or "localhost"
    port = f":{params['PORT']}" if params.get("PORT") else ""
    return f"postgresql://{user}{host}{port}/{params['NAME']}"


def database_is_reachable() -> bool:
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except OperationalError:
        connection.close()
        return False
    return True


def database_unreachable_message(exc: Exception) -> str | None:
    """A one-line explanation when `exc` came from an unreachable database, else None."""
    if not isinstance(exc, OperationalError) or database_is_reachable():
        return None
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"cannot reach the database at {database_display_url()}: {first_line}"


def database_url() -> str:
    """The default database as a DATABASE_URL (password included), for child processes started in production
    mode, which refuse to start without one."""
    from urllib.parse import quote

    params = connection.settings_dict
    host = str(params.get("HOST") or "")
    user = quote(str(params.get("USER") or ""), safe="")
    password = f":{quote(str(params['PASSWORD']), safe='')}" if params.get("PASSWORD") else ""
    if host.startswith("/"):  # a Unix socket folder (the embedded server)
        return f"postgres://{user}{password}@/{params['NAME']}?host={quote(host, safe='')}"
    port = f":{params['PORT']}" if params.get("PORT") else ""
    return f"postgres://{user}{password}@{host}{port}/{params['NAME']}"
