"""The hot endpoints: 10,000 portal users listed over HTTP, queries per request, throughput under wrk
and the memory of a worker after many requests across many portals.

Each returns raw samples; bench.cli turns them into figures.
"""

import math
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.db import DatabaseError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import User
from bench.load import LoadResult, Target, wrk
from bench.scenarios import bearer_token, fresh_portal
from bench.server import BenchServer
from customer_portal.invite_rows import InviteEntry
from customer_portal.models import PortalUser
from customer_portal.services import portal_session_open, portal_users_invite
from customer_portal.tokens import portal_token_pair
from portals.models import Portal, portal_host
from portalsite.db import SCHEMAS_PER_STATEMENT, tenant_connection

PORTAL_USERS = 10_000
PAGE = 50
MEMBER_EMAIL = "portal-member@bench.example"
MEMBER_PASSWORD = "bench-portal-member-Password-1"  # noqa: S105 (a throwaway account in a throwaway database)
BARE_PATH = "/bench/bare"
CONFIG_PATH = "/v1/customer-portal/config"
USERS_PAGE_PATH = f"/v1/customer-portal/users?limit={PAGE}"
ME_PATH = "/v1/customer-portal/me"


@dataclass(frozen=True)
class HotPortal:
    """A portal with PORTAL_USERS users, one of them an account with a known password (the member)."""

    portal: Portal
    host: str
    member: User


def portal_users_fill(portal: Portal, count: int) -> None:
    """`count` portal users in one bulk insert in the portal's schema: mixed roles and statuses, like a real list."""
    now = timezone.now()
    statuses = [PortalUser.Status.ACTIVE] * 12 + [PortalUser.Status.INVITED] * 7 + [PortalUser.Status.REVOKED]
    users = []
    for index in range(count):
        status = statuses[index % len(statuses)]
        active = status == PortalUser.Status.ACTIVE
        users.append(
            PortalUser(
                email=f"user{index}@customer{index % 97}.example",
                name=f"User {index}",
                role=PortalUser.Role.MANAGER if index % 10 == 0 else PortalUser.Role.MEMBER,
                status=status,
                global_user_id=uuid.uuid4() if active else None,
                invited_at=now - timedelta(seconds=count - index),
                joined_at=now - timedelta(seconds=count - index - 1) if active else None,
                last_login_at=now if active and index % 3 == 0 else None,
            )
        )
    with tenant_context(portal):
        PortalUser.objects.bulk_create(users, batch_size=2000)
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(PortalUser._meta.db_table)}")


def hot_portal_create(*, admin: User, users: int = PORTAL_USERS) -> HotPortal:
    portal = fresh_portal(admin)
    portal_users_fill(portal, users - 1)
    member = User.objects.create_user(MEMBER_EMAIL, MEMBER_PASSWORD)
    with tenant_context(portal):
        portal_users_invite(portal=portal, entries=[InviteEntry(email=MEMBER_EMAIL)], invited_by=None, send_email=False)
    return HotPortal(portal=portal, host=portal_host(portal.slug), member=member)


def portal_login(*, server: BenchServer, hot: HotPortal) -> str:
    """The member's portal-scoped access token: POST /v1/auth/token on the portal's host."""
    result = server.request(
        "POST", "/v1/auth/token", body={"email": MEMBER_EMAIL, "password": MEMBER_PASSWORD}, host=hot.host
    )
    if result.status != 200:
        raise RuntimeError(f"portal login answered {result.status}: {result.body}")
    access: str = result.body["access"]
    return access


# The users list over HTTP --------------------------------------------------------------------------


def users_list_http(
    *, server: BenchServer, admin: User, hot: HotPortal, repeats: int, warmup: int = 1
) -> tuple[list[float], list[float]]:
    """GET /v1/portal/{id}/users as the org admin: the whole list and ?limit=50, alternating (ms each)."""
    whole: list[float] = []
    page: list[float] = []
    path = f"/v1/portal/{hot.portal.id}/users"
    for index in range(warmup + repeats):
        for query, expected, samples in (("", PORTAL_USERS, whole), (f"?limit={PAGE}", PAGE, page)):
            result = server.request("GET", path + query, token=bearer_token(admin))
            if result.status != 200 or len(result.body) != expected:
                raise RuntimeError(f"GET {path}{query} answered {result.status} with {len(result.body or [])} users")
            if index >= warmup:
                samples.append(result.elapsed_ms)
    return whole, page


# Queries per request -------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueryCount:
    key: str
    label: str
    cold: int  # first call
    warm: int  # second call: the figure
    pinned: int | None  # what the tests pin (None: not pinned)
    pinned_by: str
    error: str = ""  # the request failed (cold and warm are then -1)


def _call(client: Client, method: str, path: str, host: str, token: str | None, body: Any) -> Any:
    headers = {"Host": host, "X-Forwarded-Proto": "https"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        if method == "POST":
            return client.post(path, body, content_type="application/json", headers=headers, secure=True)
        return client.get(path, headers=headers, secure=True)
    finally:
        tenant_connection.set_schema_to_public()  # the request leaves the connection on its portal


def queries_per_request(*, admin: User, hot: HotPortal, main_host: str) -> list[QueryCount]:
    """Each hot endpoint twice through Django's test Client in this process; the second call is counted."""
    with warnings.catch_warnings():
        # WhiteNoise, loaded with the middleware: the bench never collects static files.
        warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
        return _queries_per_request(admin=admin, hot=hot, main_host=main_host)


def _queries_per_request(*, admin: User, hot: HotPortal, main_host: str) -> list[QueryCount]:
    client = Client()
    login = {"email": MEMBER_EMAIL, "password": MEMBER_PASSWORD}
    member_token: dict[str, str] = {}
    admin_token = bearer_token(admin)
    portal_users = f"/v1/portal/{hot.portal.id}/users?limit={PAGE}"
    cases = [
        ("token_obtain", "POST /v1/auth/token, portal host", "POST", "/v1/auth/token", hot.host, None, login, None, ""),
        ("config", "GET /v1/customer-portal/config, portal user", "GET", CONFIG_PATH, hot.host, "member", None, 1,
         "tests/customer_portal/test_api.py"),
        ("me", "GET /v1/customer-portal/me, portal user", "GET", ME_PATH, hot.host, "member", None, 1,
         "tests/customer_portal/test_api.py"),
        ("cp_users_page", f"GET /v1/customer-portal/users?limit={PAGE}, admin", "GET",
         f"/v1/customer-portal/users?limit={PAGE}", hot.host, "admin", None, 4, "tests/customer_portal/test_api.py"),
        ("portal_list", "GET /v1/portal, admin", "GET", "/v1/portal", main_host, "admin", None, 5,
         "tests/portals/test_portal_api.py"),
        ("portal_users_page", f"GET /v1/portal/{{id}}/users?limit={PAGE}, admin", "GET", portal_users, main_host,
         "admin", None, 6, "tests/portals/test_portal_users_api.py"),
    ]  # fmt: skip
    counts = []
    for key, label, method, path, host, who, body, pinned, pinned_by in cases:
        token = {"member": member_token.get("access"), "admin": admin_token, None: None}[who]
        measured = []
        try:
            for _ in range(2):
                with CaptureQueriesContext(connection) as queries:
                    response = _call(client, method, path, host, token, body)
                if response.status_code != 200:
                    raise RuntimeError(f"answered {response.status_code}: {response.content[:300]!r}")
                measured.append(len(queries))
        except (DatabaseError, RuntimeError) as exc:
            # e.g. GET /v1/portal past ~1,000 portals: "out of shared memory" (see bench/README.md)
            counts.append(QueryCount(key, label, -1, -1, pinned, pinned_by, error=str(exc).strip().splitlines()[0]))
            continue
        if key == "token_obtain":
            member_token["access"] = response.json()["access"]
        if key == "portal_list":
            # The user counts read the portals' schemas in one statement per SCHEMAS_PER_STATEMENT portals.
            pinned = 4 + math.ceil(len(response.json()) / SCHEMAS_PER_STATEMENT)
        counts.append(QueryCount(key, label, measured[0], measured[1], pinned, pinned_by))
    return counts


# Throughput under wrk --------------------------------------------------------------------------------


def throughput(
    *, targets: dict[str, tuple[BenchServer, Target]], rounds: int, seconds: int, connections: int = 4
) -> dict[str, list[LoadResult]]:
    """`rounds` wrk runs of `seconds` per target (each on its server), the targets taking turns (the first of
    each round rotates, so every target and its baseline share the machine's moments), after a one-second
    warm-up of each."""
    for server, target in targets.values():
        wrk(server, [target], seconds=1, connections=connections)
    results: dict[str, list[LoadResult]] = {name: [] for name in targets}
    names = list(targets)
    for number in range(rounds):
        for name in names[number % len(names) :] + names[: number % len(names)]:
            server, target = targets[name]
            results[name].append(wrk(server, [target], seconds=seconds, connections=connections))
    return results


# Worker memory -------------------------------------------------------------------------------------


def portal_user_tokens(*, portals: list[Portal]) -> list[Target]:
    """For each portal: link a global account (member<i>@bench.example), open its portal session (what a
    login on the portal's host does) and mint its portal-scoped access token; a GET config target each."""
    accounts = {user.email: user for user in User.objects.filter(email__startswith="member")}
    targets = []
    for index, portal in enumerate(portals):
        email = f"member{index % len(accounts)}@bench.example"
        with tenant_context(portal):
            portal_users_invite(portal=portal, entries=[InviteEntry(email=email)], invited_by=None, send_email=False)
            session = portal_session_open(user=accounts[email], ip_address="127.0.0.1", user_agent="bench")
        access = portal_token_pair(user=accounts[email], portal=portal, session=session)["access"]
        targets.append(Target(path=CONFIG_PATH, host=portal_host(portal.slug), token=access))
    return targets


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


@dataclass(frozen=True)
class MemorySample:
    requests: int  # sent so far, across both workers
    rss_kib: dict[int, int]  # worker pid -> VmRSS
    rss_anon_kib: dict[int, int]  # worker pid -> RssAnon (its private memory: heap, stacks)

    @classmethod
    def read(cls, requests: int, pids: list[int]) -> "MemorySample":
        return cls(
            requests,
            {pid: _status_kib(pid, "VmRSS") for pid in pids},
            {pid: _status_kib(pid, "RssAnon") for pid in pids},
        )


def memory_run(
    *, server: BenchServer, targets: list[Target], total: int, every: int, connections: int = 4
) -> Iterator[MemorySample]:
    """GET config rotating over `targets` until `total` requests; the workers' RSS before and every `every`."""
    pids = server.wait_workers()
    yield MemorySample.read(0, pids)
    sent = 0
    while sent < total:
        result = wrk(server, targets, seconds=300, connections=connections, limit=min(every, total - sent))
        if result.errors:
            raise RuntimeError(f"memory run: {result.non_2xx} non-2xx responses, {result.socket_errors} socket errors")
        sent += result.requests
        if server.worker_pids() != pids:
            raise RuntimeError("a gunicorn worker was replaced during the memory run (crash or timeout)")
        yield MemorySample.read(sent, pids)
