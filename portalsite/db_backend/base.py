"""django-tenants' PostgreSQL backend without the redundant `SET search_path`.

django-tenants forgets the applied search_path on every `set_tenant`, so each request
(which starts on public, then switches to its portal) pays a `SET` even when the
connection is already there. This backend remembers what the database has and skips
the `SET` when the wanted path is the same; anything that can change or discard it
(closing the connection, a rollback) forgets it, exactly as django-tenants does.
"""

from typing import Any

from django_tenants.postgresql_backend import base


class DatabaseWrapper(base.DatabaseWrapper):
    _applied_search_path: list[str] | None = None

    def set_tenant(self, tenant: Any, include_public: bool = True) -> None:
        if self.search_path_set_schemas is not None:
            self._applied_search_path = self.search_path_set_schemas
        super().set_tenant(tenant, include_public)
        if self._applied_search_path is not None and self._get_cursor_search_paths() == self._applied_search_path:
            self.search_path_set_schemas = self._applied_search_path

    def close(self) -> None:
        self._applied_search_path = None
        super().close()

    def rollback(self) -> None:
        self._applied_search_path = None  # a rolled-back transaction may have issued the SET
        super().rollback()

    def savepoint_rollback(self, sid: str) -> None:
        self._applied_search_path = None
        super().savepoint_rollback(sid)
