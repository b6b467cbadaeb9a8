"""django-tenants' PostgreSQL backend without the per-request work it need not do.

The redundant `SET search_path`: django-tenants forgets the applied search_path on every
`set_tenant`, so each request (which starts on public, then switches to its portal) pays a `SET`
even when the connection is already there. This backend remembers what the database has and
skips the `SET` when the wanted path is the same; anything that can change or discard it
(closing the connection, a rollback) forgets it, exactly as django-tenants does.

The health check's `SELECT 1`: with CONN_HEALTH_CHECKS Django sends one at the start of every
request that reuses a connection. An idle connection has nothing to read unless the server has
closed it or sent it a fatal error (a restart, a terminated backend), so a quiet socket is proof
enough; a readable one gets Django's real check, which closes the connection if it fails.

Parsing and planning: `prepared_cursor()` gives a cursor whose statements PostgreSQL prepares on
their first run and then only executes, for the query every portal-scoped request runs (parsing
and planning it cost the server about three times its execution). Prepared statements live in
the server session, as the search_path does: a pooler in front must use session pooling.

This is the one module that works with private parts of Django, django-tenants and psycopg; what
each saving gained is in docs/scaling.md. What it relies on, and the test that fails first if a
dependency changes it:
- django-tenants' `search_path_set_schemas` and `_get_cursor_search_paths()` (the SET it skips):
  tests/portals/test_routing.py::test_switching_schemas_sets_the_search_path_once_per_switch;
- Django's `health_check_enabled`, `health_check_done` and `close_if_health_check_failed()`:
  tests/test_db_backend.py::test_a_quiet_connection_skips_the_select_1_and_a_terminated_one_is_replaced;
- Django's `ServerBindingCursor` and `create_cursor()`, psycopg's `prepare`/`binary` execute options
  and binary inet/cidr loaders: tests/customer_portal/test_access.py::
  test_the_session_check_loads_the_member_and_session_as_the_orm_does and
  test_the_prepared_session_check_follows_the_schema.
"""

import select
from typing import TYPE_CHECKING, Any

import psycopg
from django.db.backends.postgresql.base import ServerBindingCursor
from django.db.backends.utils import CursorWrapper
from django_tenants.postgresql_backend import base
from psycopg.abc import Buffer
from psycopg.types.net import CidrBinaryLoader, InetBinaryLoader

# psycopg's own default. Only server-binding cursors ever prepare: Django's cursors bind on the client.
PREPARE_THRESHOLD = 5


if TYPE_CHECKING:  # django-stubs does not declare Django's psycopg cursors
    _ServerBindingCursor = psycopg.Cursor[Any]
else:
    _ServerBindingCursor = ServerBindingCursor


class PreparedCursor(_ServerBindingCursor):
    """Binds parameters on the server; a statement that has any is prepared on its first run and answered in
    binary, which psycopg loads in C (Django's time-zone loader for text is Python, a few microseconds per
    value). A statement without, such as django-tenants' `SET search_path` on this cursor, runs as usual."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        kwargs.setdefault("prepare", bool(params))
        kwargs.setdefault("binary", bool(params))
        return super().execute(query, params, **kwargs)


# Binary inet/cidr values load as str, as Django's text loaders give them (psycopg's own give ipaddress objects).
class _InetBinaryAsStr(InetBinaryLoader):
    def load(self, data: Buffer) -> str:  # type: ignore[override]
        return str(super().load(data))


class _CidrBinaryAsStr(CidrBinaryLoader):
    def load(self, data: Buffer) -> str:  # type: ignore[override]
        return str(super().load(data))


class DatabaseWrapper(base.DatabaseWrapper):
    # Django's own attributes (4.1+) that django-stubs does not declare.
    health_check_enabled: bool
    health_check_done: bool

    _applied_search_path: list[str] | None = None
    _next_cursor_prepared = False

    def set_tenant(self, tenant: Any, include_public: bool = True) -> None:
        if self.search_path_set_schemas is not None:
            self._applied_search_path = self.search_path_set_schemas
        super().set_tenant(tenant, include_public)
        if self._applied_search_path is not None and self._get_cursor_search_paths() == self._applied_search_path:
            self.search_path_set_schemas = self._applied_search_path

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        if "prepare_threshold" not in self.settings_dict["OPTIONS"]:
            params["prepare_threshold"] = PREPARE_THRESHOLD  # Django turns prepared statements off
        return params

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        new_connection = super().get_new_connection(conn_params)
        # Binary results (PreparedCursor) load network types as str, as Django's text loaders do.
        new_connection.adapters.register_loader("inet", _InetBinaryAsStr)
        new_connection.adapters.register_loader("cidr", _CidrBinaryAsStr)
        return new_connection

    def prepared_cursor(self) -> CursorWrapper:
        """A cursor as `cursor()` gives (connected, health-checked, on the current search_path), preparing."""
        self._next_cursor_prepared = True
        try:
            return self.cursor()
        finally:
            self._next_cursor_prepared = False

    def create_cursor(self, name: str | None = None) -> Any:
        if self._next_cursor_prepared and name is None:
            return PreparedCursor(self.connection)
        return super().create_cursor(name)

    def close_if_health_check_failed(self) -> None:
        checking = self.connection is not None and self.health_check_enabled and not self.health_check_done
        if checking and self._socket_is_quiet():
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def _socket_is_quiet(self) -> bool:
        if self.connection.closed or self.connection.broken:
            return False
        poller = select.poll()
        poller.register(self.connection.fileno(), select.POLLIN)
        return not poller.poll(0)

    def close(self) -> None:
        self._applied_search_path = None
        super().close()

    def rollback(self) -> None:
        self._applied_search_path = None  # a rolled-back transaction may have issued the SET
        super().rollback()

    def savepoint_rollback(self, sid: str) -> None:
        self._applied_search_path = None
        super().savepoint_rollback(sid)
