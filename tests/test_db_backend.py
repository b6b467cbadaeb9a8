"""portalsite.db_backend: the health check that costs no round trip while the connection is quiet."""

import select
import threading

import pytest
from django.db import connection

from portalsite.db_backend.base import DatabaseWrapper

pytestmark = pytest.mark.django_db


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _wait_readable(fd: int, seconds: float = 5.0) -> None:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    assert poller.poll(seconds * 1000), "the server never closed the connection"


def test_a_quiet_connection_skips_the_select_1_and_a_terminated_one_is_replaced(monkeypatch):
    real_checks: list[int] = []
    is_usable = DatabaseWrapper.is_usable
    monkeypatch.setattr(DatabaseWrapper, "is_usable", lambda self: real_checks.append(1) or is_usable(self))
    terminate = threading.Event()
    terminated = threading.Event()
    seen: dict[str, object] = {}

    def requests() -> None:  # a thread of its own: its own connection, in autocommit like a request's
        try:
            first = _backend_pid()
            connection.health_check_done = False  # what the start of each request does
            seen["reused"] = _backend_pid() == first
            seen["checks_while_quiet"] = len(real_checks)
            seen["pid"] = first
            terminate.set()
            assert terminated.wait(10)
            _wait_readable(connection.connection.fileno())
            connection.health_check_done = False
            seen["replaced"] = _backend_pid() != first
            seen["checks_after"] = len(real_checks)
        except BaseException as exc:
            seen["error"] = exc
            terminate.set()
        finally:
            connection.close()

    thread = threading.Thread(target=requests)
    thread.start()
    assert terminate.wait(10)
    if "pid" in seen:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [seen["pid"]])
    terminated.set()
    thread.join(timeout=30)

    assert "error" not in seen, seen.get("error")
    assert seen == {"reused": True, "checks_while_quiet": 0, "pid": seen["pid"], "replaced": True, "checks_after": 1}
