"""Live tests: gunicorn on loopback over a throwaway PostgreSQL of their own (marked slow).

Each test starts a pgserver PostgreSQL in a folder of its own (never the suite's database), sets it
up with `quickstart --no-serve`, serves it with gunicorn (2 workers) on 127.0.0.1 and always
stops both. Run with `pytest -m slow -s`; `.ci/run` does.

- The outage test stops PostgreSQL under a serving gunicorn: requests during the outage must be
  quick JSON 503s, service must resume without restarting the workers, and every write that was
  acknowledged before the outage must still be there.
- The load test runs mixed traffic over 50 portals for LOAD_SECONDS (default 60) and reports
  requests, req/s and p50/p95/p99 latency per kind (to stdout, and as JSON to LOAD_REPORT).
"""

import contextlib
import http.client
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
MAIN_HOST = "localhost"
DEMO_ADMIN_EMAIL = "admin@demo.example.com"  # made by quickstart (customer_portal/management/commands/quickstart.py)
GUNICORN_WORKERS = 2
START_TIMEOUT = 60.0  # seconds for gunicorn to answer /healthz
COMMAND_TIMEOUT = 300  # seconds for one manage.py command (migrating 50+ spare schemas included)

# Starts (or joins) a pgserver PostgreSQL under argv[1]/pg with the `portalsite` database; prints its socket folder.
_PG_START = (
    "import json, sys, warnings; from pathlib import Path; warnings.simplefilter('ignore'); "
    "from portalsite.embedded_db import embedded_database_settings; "
    "print(json.dumps(embedded_database_settings(Path(sys.argv[1]))['HOST']))"
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# HTTP --------------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    body: Any  # parsed JSON, else the text
    headers: http.client.HTTPMessage
    seconds: float

    @property
    def is_json(self) -> bool:
        return self.headers.get("Content-Type", "").startswith("application/json") and not isinstance(self.body, str)


class Client:
    """One HTTP/1.1 connection to 127.0.0.1:port, reopened when the server closes it.

    Gunicorn's sync workers close the connection after every response; http.client then
    opens a new one for the next request.
    """

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def close(self) -> None:
        self.conn.close()

    def call(
        self, method: str, path: str, *, host: str = MAIN_HOST, token: str | None = None, body: Any = None
    ) -> Answer:
        headers = {"Host": host, "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        start = time.perf_counter()
        try:
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()  # a fresh connection for the next call
            raise
        seconds = time.perf_counter() - start
        if response.will_close:
            self.conn.close()
        try:
            parsed: Any = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return Answer(response.status, parsed, response.headers, seconds)


def call(port: int, method: str, path: str, *, timeout: float = 30.0, **kwargs: Any) -> Answer:
    client = Client(port, timeout=timeout)
    try:
        return client.call(method, path, **kwargs)
    finally:
        client.close()


# The stack: PostgreSQL + manage.py + gunicorn ----------------------------------------------------


@dataclass
class LiveStack:
    work: Path  # database and DATA_DIR: removed afterwards
    logs: Path  # gunicorn's log: kept (the test's tmp_path)
    port: int = field(default_factory=_free_port)
    socket_dir: str = ""
    gunicorn: subprocess.Popen | None = None
    timings: dict[str, float] = field(default_factory=dict)  # wall seconds of the set-up steps
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(50))
    gunicorn_env: dict[str, str] = field(default_factory=dict)  # extra environment for gunicorn only

    @property
    def db_dir(self) -> Path:
        return self.work / "db"

    @property
    def pgdata(self) -> Path:
        return self.db_dir / "pg"

    @property
    def data_dir(self) -> Path:
        return self.work / "data"

    @property
    def log_path(self) -> Path:
        return self.logs / "gunicorn.log"

    def env(self, **extra: str) -> dict[str, str]:
        # Nothing of the caller's configuration leaks in (REDIS_URL, or *_FILE values that would win over ours).
        env = {key: value for key, value in os.environ.items() if key != "REDIS_URL" and not key.endswith("_FILE")}
        env.update(
            DJANGO_SETTINGS_MODULE="portalsite.settings",
            DATABASE_URL=f"postgres://postgres@/portalsite?host={quote(self.socket_dir, safe='')}",
            DEBUG="false",
            SECRET_KEY=self.secret_key,
            SECURE_SSL_REDIRECT="false",
            ALLOWED_HOSTS="*",
            DATA_DIR=str(self.data_dir),
            AUTH_THROTTLE_RATE="100000/min",
            INVITE_THROTTLE_RATE="100000/min",
            JWT_ACCESS_LIFETIME="3600",
            EMAIL_URL="dummymail://",
            PYTHONWARNINGS="ignore",
        )
        env.update(extra)
        return env

    # PostgreSQL

    def start_db(self) -> float:
        """Start PostgreSQL on the data folder (a new one the first time); returns the seconds it took."""
        self.db_dir.mkdir(parents=True, exist_ok=True)
        begin = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-c", _PG_START, str(self.db_dir)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        socket_dir = json.loads(result.stdout.strip().splitlines()[-1])
        assert not self.socket_dir or socket_dir == self.socket_dir, (self.socket_dir, socket_dir)
        self.socket_dir = socket_dir
        return time.monotonic() - begin

    def stop_db(self) -> None:
        from pgserver._commands import pg_ctl

        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return
        user = "pgserver" if os.geteuid() == 0 else None
        try:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=user, timeout=60)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            # pg_ctl failed (see its log line): stop our own postmaster by its pid, as pg_ctl would (SIGINT: fast).
            with contextlib.suppress(FileNotFoundError, ValueError, IndexError, psutil.NoSuchProcess):
                postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
                postmaster.send_signal(signal.SIGINT)
                postmaster.wait(timeout=30)

    # Django

    def manage(self, *args: str, stdin: str | None = None, **extra_env: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env=self.env(**extra_env),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )
        assert result.returncode == 0, f"manage.py {' '.join(args)}: {result.stderr[-4000:]}"
        return result.stdout

    def python(self, script: str, *args: str, stdin: str | None = None) -> str:
        """Run a Django script (django.setup() done by the script) against this stack's database."""
        result = subprocess.run(
            [sys.executable, "-c", script, *args],
            cwd=REPO,
            env=self.env(),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )
        assert result.returncode == 0, result.stderr[-4000:]
        return result.stdout

    def admin_password(self) -> str:
        return (self.data_dir / "demo_admin_password").read_text().strip()

    # gunicorn

    def start_gunicorn(self) -> None:
        begin = time.monotonic()
        log = self.log_path.open("ab")
        args = ["-w", str(GUNICORN_WORKERS), "-b", f"127.0.0.1:{self.port}", "--timeout", "60"]
        # Without --no-control-socket every gunicorn on the machine shares ~/.gunicorn/gunicorn.ctl.
        args += ["--graceful-timeout", "5", "--no-control-socket"]
        self.gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "portalsite.wsgi", *args],
            cwd=REPO,
            env=self.env(**self.gunicorn_env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()  # the child keeps its own descriptor
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.gunicorn.poll() is None, f"gunicorn exited: {self.log_tail()}"
            with contextlib.suppress(OSError, http.client.HTTPException):
                if call(self.port, "GET", "/healthz", timeout=5).status == 200:
                    self.timings["gunicorn up"] = time.monotonic() - begin
                    return
            time.sleep(0.2)
        raise AssertionError(f"gunicorn did not answer /healthz within {START_TIMEOUT} s: {self.log_tail()}")

    def stop_gunicorn(self) -> None:
        if self.gunicorn is None or self.gunicorn.poll() is not None:
            return
        self.gunicorn.terminate()
        try:
            self.gunicorn.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.gunicorn.kill()
            self.gunicorn.wait(timeout=15)

    def worker_pids(self) -> set[int]:
        assert self.gunicorn is not None
        return {child.pid for child in psutil.Process(self.gunicorn.pid).children()}

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else "(no log)"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LiveStack]:
    """A migrated throwaway PostgreSQL with quickstart's demo org; the test starts gunicorn.
    Whatever happens, gunicorn is terminated, PostgreSQL stopped and its folder removed afterwards.

    The database lives outside pytest's tmp_path: as root, pgserver runs PostgreSQL as the user
    `pgserver`, which must traverse every parent folder, and any other pytest session that starts
    meanwhile makes /tmp/pytest-of-<user> private again (after which pg_ctl cannot reach it).
    """
    live = LiveStack(Path(tempfile.mkdtemp(prefix="portalsite-live-")), tmp_path)
    try:
        live.timings["postgres start"] = live.start_db()
        begin = time.monotonic()
        live.manage("quickstart", "--no-serve")
        live.timings["quickstart"] = time.monotonic() - begin
        yield live
    finally:
        try:
            live.stop_gunicorn()
        finally:
            try:
                live.stop_db()
            finally:
                shutil.rmtree(live.work, ignore_errors=True)


def admin_token(stack: LiveStack) -> str:
    answer = call(
        stack.port, "POST", "/v1/auth/token", body={"email": DEMO_ADMIN_EMAIL, "password": stack.admin_password()}
    )
    assert answer.status == 200, answer.body
    return answer.body["access"]


def _setup_line(stack: LiveStack) -> str:
    return "set-up: " + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in stack.timings.items())


def print_report(capsys: pytest.CaptureFixture[str], text: str) -> None:
    with capsys.disabled():
        print(f"\n{text}", flush=True)


# Outage ------------------------------------------------------------------------------------------

OUTAGE_ANSWER_SECONDS = 5.0  # each request during the outage answers within this
RECOVERY_SECONDS = 20.0  # service is back within this after PostgreSQL is


def test_a_database_outage_is_a_quick_503_and_loses_no_acknowledged_write(
    stack: LiveStack, capsys: pytest.CaptureFixture[str]
):
    stack.start_gunicorn()
    port = stack.port
    token = admin_token(stack)

    # Acknowledged writes: a portal, a bulk invite into it, a second portal never visited on its host.
    created = call(port, "POST", "/v1/portal", token=token, body={"name": "Outage", "slug": "outage"})
    assert created.status == 201, created.body
    portal_id = created.body["id"]
    emails = [f"outage-{n}@example.com" for n in range(20)]
    invited = call(
        port,
        "POST",
        f"/v1/portal/{portal_id}/users",
        token=token,
        body={"users": [{"email": email} for email in emails], "send_email": False},
    )
    assert invited.status == 201, invited.body
    member_ids = {result["user"]["id"] for result in invited.body["results"]}
    assert len(member_ids) == len(emails)
    cold = call(port, "POST", "/v1/portal", token=token, body={"name": "Cold", "slug": "cold"})
    assert cold.status == 201, cold.body
    # The outage portal's host is in the routing cache from here on; cold.localhost never is.
    warm = call(port, "GET", "/v1/customer-portal/config", host="outage.localhost", token=token)
    assert warm.status == 200, warm.body

    workers = stack.worker_pids()
    assert len(workers) == GUNICORN_WORKERS

    stopped_at = time.monotonic()
    stack.stop_db()
    stop_seconds = time.monotonic() - stopped_at

    probes = [
        ("GET /healthz", "GET", "/healthz", MAIN_HOST, None, None),
        ("GET /v1/portal", "GET", "/v1/portal", MAIN_HOST, token, None),
        ("GET /v1/portal/{id}", "GET", f"/v1/portal/{portal_id}", MAIN_HOST, token, None),
        (
            "POST /v1/portal/{id}/users",
            "POST",
            f"/v1/portal/{portal_id}/users",
            MAIN_HOST,
            token,
            {"users": [{"email": "during-outage@example.com"}], "send_email": False},
        ),
        ("POST /v1/auth/token", "POST", "/v1/auth/token", MAIN_HOST, None, {"email": "a@example.com", "password": "x"}),
        ("GET config (warm host)", "GET", "/v1/customer-portal/config", "outage.localhost", token, None),
        ("GET config (cold host)", "GET", "/v1/customer-portal/config", "cold.localhost", token, None),
        ("GET /healthz (cold host)", "GET", "/healthz", "cold.localhost", None, None),
    ]
    observed = []
    for _round in range(2):  # twice: each of the two workers sees the outage at least once, most likely
        for label, method, path, host, bearer, body in probes:
            begin = time.monotonic()
            try:
                answer = call(port, method, path, host=host, token=bearer, body=body, timeout=10)
            except (OSError, http.client.HTTPException) as exc:
                pytest.fail(f"{label} during the outage: no answer after {time.monotonic() - begin:.1f} s ({exc!r})")
            observed.append((label, answer))
            assert answer.seconds < OUTAGE_ANSWER_SECONDS, (label, answer.seconds)
            assert answer.status == 503, (label, answer.status, answer.body)
            assert answer.is_json, (label, answer.headers.get("Content-Type"), answer.body)
            if path == "/healthz":
                assert answer.body == {"status": "error", "database": "unavailable"}, (label, answer.body)
            else:
                assert isinstance(answer.body.get("detail"), str), (label, answer.body)
                assert answer.headers.get("Retry-After"), label

    restart_seconds = stack.start_db()
    back_at = time.monotonic()
    recovered = None
    polls = 0
    while time.monotonic() - back_at < RECOVERY_SECONDS and polls < 200:
        polls += 1
        answer = call(port, "GET", "/healthz", timeout=5)
        if answer.status == 200:
            recovered = time.monotonic() - back_at
            break
        time.sleep(0.1)
    assert recovered is not None, f"no 200 from /healthz {RECOVERY_SECONDS} s after PostgreSQL came back"

    # Both workers serve again (several calls reach both), and neither was restarted.
    after = [call(port, "GET", "/v1/portal", token=token, timeout=10) for _ in range(10)]
    assert [answer.status for answer in after] == [200] * 10, [(a.status, a.body) for a in after]
    assert stack.worker_pids() == workers

    # Every acknowledged write is there; the refused one is not.
    portal = call(port, "GET", f"/v1/portal/{portal_id}", token=token)
    assert portal.status == 200, portal.body
    assert portal.body["slug"] == "outage"
    users = call(port, "GET", f"/v1/portal/{portal_id}/users", token=token)
    assert users.status == 200, users.body
    assert {user["id"] for user in users.body} == member_ids
    assert "during-outage@example.com" not in {user["email"] for user in users.body}
    listed = call(port, "GET", "/v1/portal", token=token)
    assert {"outage", "cold"} <= {item["slug"] for item in listed.body}
    # The hosts work again, the one that was never cached included; and writes are accepted.
    for host in ("outage.localhost", "cold.localhost"):
        config = call(port, "GET", "/v1/customer-portal/config", host=host, token=token)
        assert config.status == 200, (host, config.body)
    again = call(
        port,
        "POST",
        f"/v1/portal/{portal_id}/users",
        token=token,
        body={"users": [{"email": "after-outage@example.com"}], "send_email": False},
    )
    assert again.status == 201, again.body

    lines = [
        _setup_line(stack),
        f"outage: PostgreSQL stopped in {stop_seconds:.2f} s, restarted in {restart_seconds:.2f} s",
        *(
            f"  during: {label:<28} {answer.status} in {answer.seconds * 1000:7.1f} ms  {json.dumps(answer.body)}"
            for label, answer in observed
        ),
        f"  after: /healthz 200 {recovered:.2f} s after PostgreSQL was back ({polls} polls); "
        f"workers unchanged {sorted(workers)}; {len(member_ids)} acknowledged invites + 2 portals all present",
    ]
    print_report(capsys, "\n".join(lines))


# Load --------------------------------------------------------------------------------------------

LOAD_PORTALS = 50
LOAD_THREADS = int(os.environ.get("LOAD_THREADS", "8"))
LOAD_SECONDS = float(os.environ.get("LOAD_SECONDS", "60"))
LOAD_PASSWORD = "load-" + "x" * 12  # throwaway accounts on a throwaway server
FEATURES = ["documents", "invoices", "support_tickets", "knowledge_base", "chat"]

# (kind, weight): what one request of the mix is.
TRAFFIC_MIX = [
    ("portal user GET config", 30),
    ("portal user GET me", 30),
    ("admin GET /v1/portal", 8),
    ("admin GET portal users", 15),
    ("admin POST invite", 3),
    ("admin PATCH feature toggle", 4),
    ("GET /healthz", 10),
]

_CREATE_ACCOUNTS = (
    "import json, sys, django; django.setup(); from accounts.services import user_create\n"
    "for email in json.loads(sys.stdin.read()): user_create(email=email, password=sys.argv[1])"
)


@dataclass
class PortalUnderLoad:
    id: str
    host: str
    user_token: str


def _percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(fraction * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def _summary(latencies: dict[str, list[float]], errors: dict[str, int], seconds: float) -> dict[str, Any]:
    def row(values: list[float], error_count: int) -> dict[str, Any]:
        ordered = sorted(values)
        return {
            "requests": len(values),
            "errors": error_count,
            "req_per_s": round(len(values) / seconds, 1),
            "p50_ms": round(_percentile(ordered, 0.50) * 1000, 1),
            "p95_ms": round(_percentile(ordered, 0.95) * 1000, 1),
            "p99_ms": round(_percentile(ordered, 0.99) * 1000, 1),
            "max_ms": round((ordered[-1] if ordered else 0.0) * 1000, 1),
        }

    kinds = {kind: row(latencies.get(kind, []), errors.get(kind, 0)) for kind, _ in TRAFFIC_MIX}
    everything = [value for values in latencies.values() for value in values]
    return {
        "seconds": round(seconds, 1),
        "threads": LOAD_THREADS,
        "gunicorn_workers": GUNICORN_WORKERS,
        "portals": LOAD_PORTALS,
        "kinds": kinds,
        "total": row(everything, sum(errors.values())),
    }


def _table(summary: dict[str, Any]) -> str:
    header = f"{'kind':<28} {'requests':>9} {'errors':>7} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
    lines = [
        f"load: {summary['seconds']} s, {summary['threads']} client threads, "
        f"gunicorn {summary['gunicorn_workers']} sync workers, {summary['portals']} portals",
        header,
        "-" * len(header),
    ]
    for kind, row in [*summary["kinds"].items(), ("total", summary["total"])]:
        lines.append(
            f"{kind:<28} {row['requests']:>9} {row['errors']:>7} {row['req_per_s']:>8} "
            f"{row['p50_ms']:>8} {row['p95_ms']:>8} {row['p99_ms']:>8}"
        )
    return "\n".join(lines)


def _setup_portals(stack: LiveStack, token: str) -> list[PortalUnderLoad]:
    port = stack.port
    emails = [f"load-user-{n:02d}@example.com" for n in range(LOAD_PORTALS)]
    stack.python(_CREATE_ACCOUNTS, LOAD_PASSWORD, stdin=json.dumps(emails))

    def create(n: int) -> PortalUnderLoad:
        slug = f"load-{n:02d}"
        created = call(port, "POST", "/v1/portal", token=token, body={"name": f"Load {n}", "slug": slug})
        assert created.status == 201, created.body
        portal_id = created.body["id"]
        # The account holder is linked (active at once); 30 more people get pending invitations.
        people = [{"email": emails[n]}] + [{"email": f"load-{n:02d}-{m:02d}@example.com"} for m in range(30)]
        invited = call(
            port, "POST", f"/v1/portal/{portal_id}/users", token=token, body={"users": people, "send_email": False}
        )
        assert invited.status == 201, invited.body
        assert invited.body["linked"] == 1, invited.body
        host = f"{slug}.localhost"
        login = call(port, "POST", "/v1/auth/token", host=host, body={"email": emails[n], "password": LOAD_PASSWORD})
        assert login.status == 200, login.body
        return PortalUnderLoad(portal_id, host, login.body["access"])

    with ThreadPoolExecutor(max_workers=GUNICORN_WORKERS) as pool:
        return list(pool.map(create, range(LOAD_PORTALS), timeout=COMMAND_TIMEOUT))


def test_mixed_traffic_over_50_portals_has_no_errors(stack: LiveStack, capsys: pytest.CaptureFixture[str]):
    # Enough pre-migrated spares that every create below is a rename (no worker runs here: the refills wait).
    begin = time.monotonic()
    stack.manage("refill_spare_schemas", "--size", str(LOAD_PORTALS + 3))
    stack.timings["spare schemas"] = time.monotonic() - begin
    stack.start_gunicorn()
    port = stack.port
    token = admin_token(stack)
    begin = time.monotonic()
    portals = _setup_portals(stack, token)
    stack.timings[f"{LOAD_PORTALS} portals + users over HTTP"] = time.monotonic() - begin
    log_before = len(stack.log_text())

    kinds = [kind for kind, _ in TRAFFIC_MIX]
    weights = [weight for _, weight in TRAFFIC_MIX]
    lock = threading.Lock()
    latencies: dict[str, list[float]] = {kind: [] for kind in kinds}
    errors: dict[str, int] = {}
    error_samples: list[str] = []
    deadline = time.monotonic() + LOAD_SECONDS

    def request(client: Client, rng: random.Random, kind: str, thread: int, n: int) -> Answer:
        portal = rng.choice(portals)
        if kind == "portal user GET config":
            return client.call("GET", "/v1/customer-portal/config", host=portal.host, token=portal.user_token)
        if kind == "portal user GET me":
            return client.call("GET", "/v1/customer-portal/me", host=portal.host, token=portal.user_token)
        if kind == "admin GET /v1/portal":
            return client.call("GET", "/v1/portal", token=token)
        if kind == "admin GET portal users":
            return client.call("GET", f"/v1/portal/{portal.id}/users?limit=50", token=token)
        if kind == "admin POST invite":
            email = f"invitee-{thread}-{n}@example.com"
            return client.call(
                "POST", "/v1/customer-portal/users/invite", host=portal.host, token=token, body={"email": email}
            )
        if kind == "admin PATCH feature toggle":
            path = f"/v1/customer-portal/features/{rng.choice(FEATURES)}/toggle"
            return client.call("PATCH", path, host=portal.host, token=token, body={"enabled": rng.random() < 0.5})
        return client.call("GET", "/healthz", host=rng.choice([MAIN_HOST, portal.host]))

    def run(thread: int) -> int:
        rng = random.Random(thread)  # noqa: S311 (the traffic's shape, not security)
        client = Client(port, timeout=30)
        done = 0
        try:
            while time.monotonic() < deadline and done < 1_000_000:
                kind = rng.choices(kinds, weights)[0]
                begin = time.perf_counter()
                try:
                    answer = request(client, rng, kind, thread, done)
                    ok, seconds, what = 200 <= answer.status < 300, answer.seconds, f"{answer.status} {answer.body}"
                except (OSError, http.client.HTTPException) as exc:
                    ok, seconds, what = False, time.perf_counter() - begin, repr(exc)
                done += 1
                with lock:
                    latencies[kind].append(seconds)
                    if not ok:
                        errors[kind] = errors.get(kind, 0) + 1
                        if len(error_samples) < 20:
                            error_samples.append(f"{kind}: {str(what)[:300]}")
        finally:
            client.close()
        return done

    begin = time.monotonic()
    with ThreadPoolExecutor(max_workers=LOAD_THREADS) as pool:
        futures = [pool.submit(run, thread) for thread in range(LOAD_THREADS)]
        counts = [future.result(timeout=LOAD_SECONDS + 120) for future in futures]
    seconds = time.monotonic() - begin

    summary = _summary(latencies, errors, seconds)
    summary["setup_seconds"] = {step: round(value, 1) for step, value in stack.timings.items()}
    summary["error_samples"] = error_samples
    print_report(capsys, f"{_table(summary)}\n{_setup_line(stack)}")
    if os.environ.get("LOAD_REPORT"):
        Path(os.environ["LOAD_REPORT"]).write_text(json.dumps(summary, indent=2) + "\n")

    assert sum(counts) == summary["total"]["requests"] > 0
    assert not errors, error_samples
    assert all(summary["kinds"][kind]["requests"] > 0 for kind in kinds), summary["kinds"]
    served_log = stack.log_text()[log_before:]
    assert "Traceback" not in served_log, served_log[-4000:]
