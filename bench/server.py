"""A real HTTP server (gunicorn, sync workers, loopback only) on the run's database, and a tiny client."""

import ctypes
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from django.conf import settings

from portalsite.db import database_url

READY_TIMEOUT_SECONDS = 60
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class HttpResult:
    status: int
    body: Any
    elapsed_ms: float


def die_with_parent() -> None:
    """In the child before exec (Linux): SIGTERM when the bench dies, even by SIGKILL, so no server outlives it."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _environment(*, database_name: str, cache_dir: Path | None, **extra: str) -> dict[str, str]:
    """The environment of a process the bench starts on the run's database (bench.server_settings)."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.server_settings",
        "BENCH_BASE_SETTINGS": os.environ["DJANGO_SETTINGS_MODULE"],
        "BENCH_DATABASE_NAME": database_name,
        "BENCH_CACHE_DIR": str(cache_dir),
        # Production mode: no per-query debug log, no debug pages (HTTPS via X-Forwarded-Proto below).
        "DEBUG": "false",
        # Production mode starts only with both (the bench's own settings then pick its database).
        "DATABASE_URL": database_url(),
        "SECRET_KEY": settings.SECRET_KEY,
        "LOG_LEVEL": "WARNING",
        **extra,
    }


class BenchWorker:
    """`manage.py worker` on the run's database (the jobs the server queues: refills, e-mails); on exit it is
    sent SIGTERM and waited for, as a process manager would stop it."""

    def __init__(self, *, database_name: str, cache_dir: Path, concurrency: int = 4, **env: str) -> None:
        self._log = tempfile.NamedTemporaryFile(prefix="bench-worker-", suffix=".log", delete=False)  # noqa: SIM115
        self._process = subprocess.Popen(  # noqa: S603
            [sys.executable, "manage.py", "worker", "--concurrency", str(concurrency)],
            cwd=settings.BASE_DIR,
            env=_environment(database_name=database_name, cache_dir=cache_dir, **env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,  # safe here: the bench runs no other threads
        )

    def __enter__(self) -> "BenchWorker":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(Path(self._log.name).read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()  # the worker finishes the jobs it holds, then exits
            try:
                self._process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)


class BenchServer:
    """gunicorn serving portalsite.wsgi with bench.server_settings on the run's database, or (`bare=True`) the
    bare Django project of bench.bare_project, the throughput baseline; stopped (and waited for) on exit."""

    def __init__(
        self,
        *,
        database_name: str = "",
        cache_dir: Path | None = None,
        workers: int = 1,
        bare: bool = False,
        **env_extra: str,
    ) -> None:
        self.port = _free_port()
        self.workers = workers
        self.host = settings.MAIN_HOSTS[0]  # the public schema's host: /v1/portal lives there
        self._ready_path = "/bench/bare" if bare else "/healthz"
        self._log = tempfile.NamedTemporaryFile(prefix="bench-server-", suffix=".log", delete=False)  # noqa: SIM115
        env = _environment(database_name=database_name, cache_dir=cache_dir, **env_extra)
        if bare:
            env["DJANGO_SETTINGS_MODULE"] = "bench.bare_project.settings"
        application = "bench.bare_project.wsgi:application" if bare else "portalsite.wsgi:application"
        command = [
            sys.executable, "-m", "gunicorn", application,
            "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers), "--worker-class", "sync",
            "--timeout", "300", "--log-level", "warning",
        ]  # fmt: skip
        # Own session: a Ctrl-C reaches only the bench, which then stops the server in order.
        self._process = subprocess.Popen(  # noqa: S603
            command,
            cwd=settings.BASE_DIR,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,  # safe here: the bench runs no other threads
        )

    def __enter__(self) -> "BenchServer":
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the bench server exited ({self._process.returncode}):\n{self.log_tail()}")
            try:
                if self.request("GET", self._ready_path).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(
            f"the bench server did not answer {self._ready_path} in {READY_TIMEOUT_SECONDS} s:\n{self.log_tail()}"
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        """The gunicorn workers (children of the master), in pid order."""
        master = self._process.pid
        children = Path(f"/proc/{master}/task/{master}/children")
        if children.exists():
            return sorted(int(pid) for pid in children.read_text().split())
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:
                pids.append(int(stat.parent.name))
        return sorted(pids)

    def wait_workers(self, timeout: float = READY_TIMEOUT_SECONDS) -> list[int]:
        """The worker pids once all `workers` have booted (the first answers /healthz before the others exist)."""
        deadline = time.monotonic() + timeout
        while len(pids := self.worker_pids()) < self.workers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn started {len(pids)} of {self.workers} workers:\n{self.log_tail()}")
            time.sleep(0.05)
        return pids

    def slow_path_creates(self) -> int:
        """Creates the server served from an empty pool (portals.provisioning logs a warning for each)."""
        return Path(self._log.name).read_text(errors="replace").count("spare schema pool is empty")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(Path(self._log.name).read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)

    def request(
        self, method: str, path: str, *, body: Any = None, token: str | None = None, host: str | None = None
    ) -> HttpResult:
        """One request on a new connection (gunicorn's sync worker closes each); timed from send to last byte.

        `host` is the Host header (default: the first of MAIN_HOSTS); a portal's domain routes to its schema.
        """
        headers = {"Host": host or self.host, "X-Forwarded-Proto": "https", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            start = time.perf_counter()
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            elapsed_ms = (time.perf_counter() - start) * 1000
        finally:
            conn.close()
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")[:2000]  # e.g. a proxy's or server's HTML error page
        return HttpResult(status=response.status, body=parsed, elapsed_ms=elapsed_ms)
