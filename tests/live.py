"""A throwaway site for tests that run real processes (`manage.py worker`, `quickstart`): its own database
on the suite's PostgreSQL server, migrated and set up by `quickstart --no-serve`, dropped afterwards.

The suite's own data is never committed (each test is a rolled-back transaction), so a process of its
own could see none of it; and a process working on the suite's database would commit rows that other
tests then see. Hence a database of its own: processes and the test share it through DATABASE_URL,
and the test reads and writes it through `python()` scripts and `sql()`.
"""

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from django.conf import settings
from psycopg import sql as pgsql

REPO = Path(__file__).resolve().parent.parent
COMMAND_TIMEOUT = 180

# For LiveSite.python: invite sys.argv[1] to the quickstart's demo portal (an invitation e-mail, a job).
INVITE_TO_DEMO = (
    "import json, sys\n"
    "from django_tenants.utils import tenant_context\n"
    "from customer_portal.invite_rows import InviteEntry\n"
    "from customer_portal.services import portal_users_invite\n"
    "from portals.selectors import portal_get_by_ref\n"
    "portal = portal_get_by_ref(ref='demo')\n"
    "with tenant_context(portal):\n"
    "    portal_users_invite(portal=portal, entries=[InviteEntry(email=sys.argv[1])], invited_by=None)\n"
    "print(json.dumps('ok'))\n"
)


def _server_params() -> dict[str, Any]:
    db = settings.DATABASES["default"]
    params: dict[str, Any] = {"host": db["HOST"] or "localhost", "user": db["USER"] or "postgres"}
    if db.get("PORT"):
        params["port"] = int(db["PORT"])
    if db.get("PASSWORD"):
        params["password"] = db["PASSWORD"]
    return params


@dataclass
class LiveSite:
    work: Path  # DATA_DIR and logs
    name: str = field(default_factory=lambda: f"portalsite_live_{secrets.token_hex(4)}")
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(50))
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        params = _server_params()
        auth = quote(params["user"]) + (f":{quote(params['password'])}" if "password" in params else "")
        if params["host"].startswith("/"):
            return f"postgres://{auth}@/{self.name}?host={quote(params['host'], safe='')}"
        port = f":{params['port']}" if "port" in params else ""
        return f"postgres://{auth}@{params['host']}{port}/{self.name}"

    def env(self, **extra: str) -> dict[str, str]:
        # Nothing of the caller's configuration leaks in (REDIS_URL, *_FILE values that would win over ours).
        env = {key: value for key, value in os.environ.items() if key != "REDIS_URL" and not key.endswith("_FILE")}
        env.update(
            DJANGO_SETTINGS_MODULE="portalsite.settings",
            DATABASE_URL=self.database_url,
            SECRET_KEY=self.secret_key,
            DATA_DIR=str(self.work / "data"),
            PORTAL_SPARE_POOL_SIZE="1",
            EMAIL_URL="dummymail://",
            LOG_LEVEL="INFO",
            PYTHONWARNINGS="ignore",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        env.update(extra)
        return env

    # The database

    def create(self) -> None:
        with psycopg.connect(**_server_params(), dbname="postgres", autocommit=True) as conn:
            conn.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(self.name)))
        self.manage("quickstart", "--no-serve")

    def drop(self) -> None:
        with psycopg.connect(**_server_params(), dbname="postgres", autocommit=True) as conn:
            conn.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(self.name)))

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(**_server_params(), dbname=self.name, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    # Processes

    def manage(self, *args: str, **env: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )
        assert result.returncode == 0, f"manage.py {' '.join(args)}: {result.stderr[-4000:]}"
        return result.stdout

    def python(self, script: str, *args: str) -> Any:
        """Run a script after django.setup() against this site; it prints one JSON value, returned here."""
        result = subprocess.run(
            [sys.executable, "-c", "import django; django.setup()\n" + script, *args],
            cwd=REPO,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )
        assert result.returncode == 0, result.stderr[-4000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    def start(self, *args: str, log: str, **env: str) -> "Process":
        path = self.work / f"{log}.log"
        with path.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "manage.py", *args],
                cwd=REPO,
                env=self.env(**env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C at the terminal reaches only pytest
            )
        return Process(process, path)


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 60.0) -> None:
        wait_until(lambda: text in self.log(), timeout=timeout, what=f"{text!r} in {self.log_path.name}", process=self)

    def signal(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def wait(self, timeout: float = 60.0) -> int:
        return self.popen.wait(timeout=timeout)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers: whatever a test did, no process outlives it."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


def wait_until(
    condition: Callable[[], Any], *, timeout: float, what: str, process: Process | None = None, every: float = 0.05
) -> Any:
    """Poll `condition` until it is true (and return it); fail after `timeout` seconds, or at once when
    `process` has exited meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if process is not None and process.popen.poll() is not None:
            code = process.popen.returncode
            raise AssertionError(f"waiting for {what}: the process exited ({code}):\n{process.log()[-3000:]}")
        if time.monotonic() > deadline:
            tail = f":\n{process.log()[-3000:]}" if process is not None else ""
            raise AssertionError(f"no {what} within {timeout} s{tail}")
        time.sleep(every)


@contextlib.contextmanager
def live_site(work: Path, **extra_env: str) -> Iterator[LiveSite]:
    site = LiveSite(work, extra_env=dict(extra_env))
    try:
        site.create()
        yield site
    finally:
        site.drop()
