"""The search_path leak under PgBouncer's transaction pooling, shown with Debian's `pgbouncer`.

A throwaway pgbouncer listens on 127.0.0.1 (a free port) in front of the bench's throwaway
database, with one server connection in the pool, so that two clients must share it:

- transaction mode, plain `SET search_path` (what django-tenants does, once per connection):
  the next client is handed the server connection still on the first one's schema, and the first
  client's later queries run on whatever path the last client set;
- the project's own database backend (portalsite.db_backend) through that pooler: two Django
  connections on two portals, the first one's next query runs in the second portal's schema;
- transaction mode with the path set inside each transaction (`SET LOCAL`): no leak;
- session mode (the project's documented setting): each client keeps its server connection for
  the whole session and `DISCARD ALL` resets it before the next client gets it: no leak.
"""

import contextlib
import copy
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import psycopg
from django.db import connection, connections

from bench.server import die_with_parent
from portals.models import Portal
from portalsite.db_backend.base import DatabaseWrapper

PGBOUNCER_MISSING = "pgbouncer is not installed (Debian: apt-get install -y pgbouncer)"
ALIAS = "benchdb"


@dataclass(frozen=True)
class Observation:
    case: str
    step: str
    expected: str
    observed: str

    @property
    def leaked(self) -> bool:
        return self.observed != self.expected


def available() -> bool:
    return shutil.which("pgbouncer") is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run_as() -> str | None:
    """pgbouncer refuses to run as root: drop to the postgres (or nobody) account."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root and no unprivileged account (postgres, nobody) to run pgbouncer as")


@contextlib.contextmanager
def pgbouncer(*, pool_mode: str, pool_size: int) -> Iterator[int]:
    """A pgbouncer in front of the current database; yields its port. Stopped and removed on exit."""
    server = connection.settings_dict
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="bench-pgbouncer-") as folder:
        root = Path(folder)
        root.chmod(0o755)
        target = f"host={server.get('HOST') or '127.0.0.1'} port={server.get('PORT') or 5432} dbname={server['NAME']}"
        target += f" user={server['USER']}"
        if server.get("PASSWORD"):
            target += f" password={server['PASSWORD']}"
        (root / "users.txt").write_text(f'"{server["USER"]}" ""\n')
        (root / "pgbouncer.ini").write_text(
            f"[databases]\n{ALIAS} = {target}\n\n[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {root / 'users.txt'}\n"
            f"pool_mode = {pool_mode}\ndefault_pool_size = {pool_size}\nmin_pool_size = 0\nreserve_pool_size = 0\n"
            "max_client_conn = 20\nserver_reset_query = DISCARD ALL\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
        )
        for path in root.iterdir():
            path.chmod(0o644)
        user = _run_as()
        command = ["pgbouncer", *(["-u", user] if user else []), str(root / "pgbouncer.ini")]
        with (root / "log").open("w") as log:
            process = subprocess.Popen(  # noqa: S603
                command, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent, start_new_session=True
            )
        try:
            _wait_listening(port, process, root / "log")
            yield port
        finally:
            process.send_signal(signal.SIGINT)  # immediate shutdown
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited ({process.returncode}):\n{log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"pgbouncer did not listen on {port}:\n{log.read_text()[-2000:]}")


def _client(port: int) -> psycopg.Connection[Any]:
    user = connection.settings_dict["USER"]
    return psycopg.connect(
        host="127.0.0.1", port=port, dbname=ALIAS, user=user, autocommit=True, prepare_threshold=None
    )


def _path(client: psycopg.Connection[Any]) -> str:
    row = client.execute("SELECT current_schemas(false)::text").fetchone()
    assert row is not None
    return str(row[0])


def _django_connection(port: int, alias: str) -> DatabaseWrapper:
    """The project's own database wrapper (portalsite.db_backend), pointed at pgbouncer."""
    settings_dict = copy.deepcopy(connection.settings_dict)
    settings_dict.update(HOST="127.0.0.1", PORT=str(port), NAME=ALIAS, CONN_MAX_AGE=0)
    settings_dict["OPTIONS"] = {**settings_dict.get("OPTIONS", {}), "prepare_threshold": None}
    return cast(DatabaseWrapper, type(connections["default"])(settings_dict, alias))


def _django_schema(wrapper: DatabaseWrapper) -> str:
    with wrapper.cursor() as cursor:  # django-tenants sets the path on a cursor when it thinks it must
        cursor.execute("SELECT current_schema()")
        return str(cursor.fetchone()[0])


def demonstrate() -> list[Observation]:
    """Run every case; returns what each client saw against what it should have seen."""
    first, second = (
        Portal.objects.filter(is_spare=True).order_by("created_at").values_list("schema_name", flat=True)[:2]
    )
    default = "{public}"
    seen: list[Observation] = []
    with pgbouncer(pool_mode="transaction", pool_size=1) as port:
        a, b = _client(port), _client(port)
        try:
            case = "transaction pool, plain SET"
            a.execute(f'SET search_path TO "{first}"')
            seen.append(Observation(case, "A sets its portal; B's first query runs on", default, _path(b)))
            b.execute(f'SET search_path TO "{second}"')
            seen.append(Observation(case, "B sets its portal; A's next query runs on", f"{{{first}}}", _path(a)))
            case = "transaction pool, SET LOCAL per transaction"
            b.execute("RESET search_path")
            with a.transaction():
                a.execute(f'SET LOCAL search_path TO "{first}"')
                seen.append(Observation(case, "A, inside its transaction", f"{{{first}}}", _path(a)))
            seen.append(Observation(case, "B after A's transaction", default, _path(b)))
        finally:
            a.close()
            b.close()
        portal_a, portal_b = (Portal.objects.get(schema_name=name) for name in (first, second))
        django_a, django_b = _django_connection(port, "bench_pgb_a"), _django_connection(port, "bench_pgb_b")
        try:
            case = "transaction pool, the project's backend"
            django_a.set_tenant(portal_a)
            seen.append(Observation(case, "connection A on portal A", first, _django_schema(django_a)))
            django_b.set_tenant(portal_b)
            seen.append(Observation(case, "connection B on portal B", second, _django_schema(django_b)))
            seen.append(Observation(case, "connection A's next query", first, _django_schema(django_a)))
        finally:
            django_a.close()
            django_b.close()
    with pgbouncer(pool_mode="session", pool_size=2) as port:
        case = "session pool (server_reset_query DISCARD ALL)"
        a = _client(port)
        a.execute(f'SET search_path TO "{first}"')
        b = _client(port)
        try:
            b.execute(f'SET search_path TO "{second}"')
            seen.append(Observation(case, "A after B set its own path", f"{{{first}}}", _path(a)))
        finally:
            a.close()
            b.close()
        c = _client(port)  # gets a server connection A or B used, reset
        try:
            seen.append(Observation(case, "C, after A and B left", default, _path(c)))
        finally:
            c.close()
        django_a, django_b = _django_connection(port, "bench_pgb_a"), _django_connection(port, "bench_pgb_b")
        try:
            case = "session pool, the project's backend"
            django_a.set_tenant(portal_a)
            _django_schema(django_a)
            django_b.set_tenant(portal_b)
            _django_schema(django_b)
            seen.append(Observation(case, "connection A's next query", first, _django_schema(django_a)))
        finally:
            django_a.close()
            django_b.close()
    return seen
