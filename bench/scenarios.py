"""The measurements. Each returns raw samples (milliseconds or query counts); bench.cli turns them into figures.

Every timed create claims a warm spare made by the project's own `spare_schema_create`: the
pool is filled before a batch and refilled after it, never inside the timed region.
"""

import contextlib
import itertools
import logging
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import Organization, User
from accounts.selectors import admin_organizations
from accounts.services import organization_create
from bench.database import using
from bench.server import BenchServer
from customer_portal.invite_rows import InviteEntry
from customer_portal.services import portal_settings_initialize, portal_users_invite
from portals.models import Domain, Portal, portal_host
from portals.provisioning import (
    _REFILL_LOCK_KEY,
    schema_drop,
    schema_name_for_portal,
    spare_pool_refill,
    spare_schema_name,
)
from portals.services import portal_create, portal_delete

T = TypeVar("T")

ADMIN_EMAIL = "bench-admin@bench.example"
INVITE_BATCH = 1000
_STARTED = time.perf_counter()
_sequence = itertools.count(1)


def log(message: str) -> None:
    print(f"[bench {time.perf_counter() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


def timed(function: Callable[..., T], /, **kwargs: Any) -> tuple[float, T]:
    start = time.perf_counter()
    result = function(**kwargs)
    return (time.perf_counter() - start) * 1000, result


class SlowPathWatch(logging.Handler):
    """Counts portal creates that found the spare pool empty (they would migrate inside the timed region)."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "pool is empty" in record.getMessage():
            self.count += 1


# Pool and population ---------------------------------------------------------------------


def pool_size() -> int:
    return Portal.objects.filter(is_spare=True).count()


def pool_ensure(size: int) -> None:
    """At least `size` spares, made the project's way (a full migrate each)."""
    while pool_size() < size:
        if not spare_pool_refill(size=size):
            time.sleep(0.05)  # the server's refill thread holds the lock; let it finish


def pool_trim(size: int) -> None:
    """At most `size` spares: drop the newest extras (schema and row)."""
    extras = list(Portal.objects.filter(is_spare=True).order_by("-created_at")[: max(pool_size() - size, 0)])
    for spare in extras:
        with transaction.atomic():
            schema_drop(schema_name=spare.schema_name)
            Portal.objects.filter(pk=spare.pk).delete()


def refill_running() -> bool:
    """Whether any session holds the pool's refill lock (a bigint advisory key: classid/objid halves)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = %s AND objid = %s AND objsubid = 1)",
            [_REFILL_LOCK_KEY >> 32, _REFILL_LOCK_KEY & 0xFFFFFFFF],
        )
        (running,) = cursor.fetchone()
    return bool(running)


def existing_portals() -> int:
    return Portal.objects.filter(is_spare=False, organization__isnull=False).count()


def bench_org_create() -> tuple[Organization, User]:
    organization, admin, _ = organization_create(name="Bench org", admin_email=ADMIN_EMAIL)
    return organization, admin


def global_accounts_create(count: int) -> None:
    """`member<i>@bench.example`: the half of each invite batch that already has an account."""
    password = make_password(None)
    User.objects.bulk_create(User(email=f"member{i}@bench.example", password=password) for i in range(count))


def spares_copy(count: int) -> None:
    """`count` more spares, each a copy of a migrated spare (bench_clone_schema: ~25 ms instead of a
    ~300 ms migrate; same tables, indexes, constraints and rows). For creates that are not timed."""
    pool_ensure(1)  # something to copy
    template = Portal.objects.filter(is_spare=True).values_list("schema_name", flat=True).first()
    ids = [uuid.uuid4() for _ in range(count)]
    names = [spare_schema_name(spare_id) for spare_id in ids]
    with transaction.atomic():
        Portal.objects.bulk_create(
            Portal(id=spare_id, schema_name=name, slug=name.replace("_", "-"), name="(spare)", is_spare=True)
            for spare_id, name in zip(ids, names, strict=True)
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT public.bench_clone_schema(%s, name) FROM unnest(%s::text[]) AS name", [template, names]
            )


def populate(*, admin: User, target: int, batch: int = 50) -> None:
    """Bring the org to `target` portals through `portal_create` (the fast path), on copied spares."""
    made = existing_portals()
    while made < target:
        count = min(batch, target - made)
        spares_copy(count)
        for _ in range(count):
            _admin_portal_create(admin, name=f"Existing {next(_sequence)}")
        if made // 250 < (made + count) // 250 or made + count == target:
            log(f"  {made + count}/{target} portals")
        made += count


# Create and delete -----------------------------------------------------------------------


def dt_create(*, organization: Organization, name: str, slug: str) -> Portal:
    """django-tenants' default path for the same rows: `save()` with auto_create_schema migrates the schema."""
    with transaction.atomic():
        portal_id = uuid.uuid4()
        portal = Portal(
            id=portal_id, schema_name=schema_name_for_portal(portal_id), name=name, slug=slug, organization=organization
        )
        portal.auto_create_schema = True  # the TenantMixin default, which Portal turns off
        portal.save(verbosity=0)
        Domain.objects.create(domain=portal_host(slug), tenant=portal, is_primary=True)
        with tenant_context(portal):
            portal_settings_initialize(portal=portal)
    return portal


def dt_delete(*, portal: Portal) -> None:
    """django-tenants' default delete: drop the schema, then the row (domains cascade)."""
    with transaction.atomic():
        portal.delete(force_drop=True)


@dataclass
class Round:
    creates: list[float] = field(default_factory=list)
    deletes: list[float] = field(default_factory=list)
    dt_creates: list[float] = field(default_factory=list)
    dt_deletes: list[float] = field(default_factory=list)


def _alternating(count: int) -> Iterator[tuple[int, bool]]:
    """(index, at_small) for both scales at each index; the side that goes first alternates."""
    for index in range(count):
        for at_small in (True, False) if index % 2 == 0 else (False, True):
            yield index, at_small


def paired_round(
    *, admin: User, organization: Organization, small_database: BaseDatabaseWrapper, creates: int, dt_creates: int
) -> tuple[Round, Round]:
    """One round at both scales: `creates` timed `portal_create`s alternating one by one between the
    10-portal database and the N-portal one (so both sides of the ratio share the machine's moment),
    then their timed `portal_delete`s alike (portal counts end where they began), then, at 10
    portals, `dt_creates` of django-tenants' default create and delete. Returns (small, large)."""
    small, large = Round(), Round()
    with using(small_database):
        pool_ensure(creates + 2)  # every timed create claims a warm spare
    pool_ensure(creates + 2)
    made: dict[bool, list[Portal]] = {True: [], False: []}
    for _, at_small in _alternating(creates):
        with using(small_database) if at_small else contextlib.nullcontext():
            elapsed, portal = timed(
                portal_create, organization=organization, created_by=admin, name=f"Bench {next(_sequence)}"
            )
        (small if at_small else large).creates.append(elapsed)
        made[at_small].append(portal)
    for index, at_small in _alternating(creates):
        with using(small_database) if at_small else contextlib.nullcontext():
            elapsed, _ = timed(portal_delete, portal=made[at_small][index])
        (small if at_small else large).deletes.append(elapsed)
    with using(small_database):
        made_default: list[Portal] = []
        for _ in range(dt_creates):
            number = next(_sequence)
            elapsed, portal = timed(dt_create, organization=organization, name=f"Default {number}", slug=f"dt-{number}")
            small.dt_creates.append(elapsed)
            made_default.append(portal)
        for portal in made_default:
            small.dt_deletes.append(timed(dt_delete, portal=portal)[0])
    return small, large


# HTTP ------------------------------------------------------------------------------------


def bearer_token(user: User) -> str:
    """A real access token, minted fresh for each request (the default lifetime is 5 minutes)."""
    return str(AccessToken.for_user(user))


def _wait_for_server_refill(target: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while pool_size() < target or refill_running():
        if time.monotonic() > deadline:
            raise RuntimeError("the server's background refill did not top the pool up")
        time.sleep(0.01)


def http_creates(*, server: BenchServer, admin: User, count: int, warmup: int = 2) -> tuple[list[float], list[float]]:
    """Timed `POST /v1/portal` with a bearer token, and a `GET /healthz` before each (the server's floor).

    A worker beside the server runs the refill job each create queues; the next request waits
    until that refill is done, so each create is timed at a steady state the
    pool can sustain, not racing a migrate for the CPU.
    """
    target = settings.PORTAL_SPARE_POOL_SIZE
    pool_trim(target)
    pool_ensure(target)
    posts: list[float] = []
    floors: list[float] = []
    for index in range(warmup + count):
        floor = server.request("GET", "/healthz")
        result = server.request(
            "POST", "/v1/portal", body={"name": f"Http {next(_sequence)}"}, token=bearer_token(admin)
        )
        if result.status != 201:
            raise RuntimeError(f"POST /v1/portal answered {result.status}: {result.body}\n{server.log_tail()}")
        if index >= warmup:
            posts.append(result.elapsed_ms)
            floors.append(floor.elapsed_ms)
        _wait_for_server_refill(target)
    return posts, floors


# Bulk invite -----------------------------------------------------------------------------


def invite_emails(count: int) -> list[str]:
    """Alternating: an e-mail with a global account (linked at once), then one without (invited)."""
    return [f"member{i // 2}@bench.example" if i % 2 == 0 else f"invitee{i // 2}@bench.example" for i in range(count)]


def fresh_portal(admin: User) -> Portal:
    spares_copy(1)  # the create is not what is timed here
    return _admin_portal_create(admin, name=f"Invite {next(_sequence)}")


def _admin_portal_create(admin: User, *, name: str) -> Portal:
    """A portal of the organization `admin` administers, created by `admin` (as POST /v1/portal does)."""
    return portal_create(organization=admin_organizations(user=admin).get(), created_by=admin, name=name)


def _check_outcome(linked: int, invited: int, count: int) -> None:
    if (linked, invited) != (count // 2, count - count // 2):
        raise RuntimeError(f"inviting {count}: {linked} linked and {invited} invited, expected half each")


def http_invite(*, server: BenchServer, admin: User, count: int = INVITE_BATCH) -> float:
    """One timed `POST /v1/portal/{id}/users` of `count` e-mails (send_email false) into a fresh portal."""
    portal = fresh_portal(admin)
    body = {"users": [{"email": email} for email in invite_emails(count)], "send_email": False}
    result = server.request("POST", f"/v1/portal/{portal.id}/users", body=body, token=bearer_token(admin))
    if result.status != 201:
        raise RuntimeError(f"POST /v1/portal/{{id}}/users answered {result.status}: {result.body}")
    _check_outcome(result.body["linked"], result.body["invited"], count)
    return result.elapsed_ms


def service_invite(*, admin: User, count: int = INVITE_BATCH, count_queries: bool = False) -> float:
    """`portal_users_invite` into a fresh portal: milliseconds, or (count_queries) the number of queries."""
    portal = fresh_portal(admin)
    entries = [InviteEntry(email=email) for email in invite_emails(count)]
    with tenant_context(portal):
        if count_queries:
            with CaptureQueriesContext(connection) as queries:
                outcome = portal_users_invite(portal=portal, entries=entries, invited_by=admin, send_email=False)
            result = float(len(queries))
        else:
            result, outcome = timed(
                portal_users_invite, portal=portal, entries=entries, invited_by=admin, send_email=False
            )
    _check_outcome(outcome.count("linked"), outcome.count("invited"), count)
    return result
