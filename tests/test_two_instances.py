"""Two web instances on one database without Redis (marked slow): a route cached on one instance must
never lead into another organization's portal after the portal is deleted and its slug taken again.

The sequence of issue 13: org A's portal `shared` is cached on instance 2, deleted on instance 1, and
org B creates a new portal `shared`. On instance 2, A's admin token must never read B's customers (0
leaks), nothing may answer 5xx, and B's admin must be served within 10 s.
"""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.test_live import DEMO_ADMIN_EMAIL, LiveStack, admin_token, call, print_report, stack  # noqa: F401

pytestmark = pytest.mark.slow

NEW_OWNER_WITHIN = 10.0  # seconds
HOST = "shared.localhost"


@dataclass
class SecondInstance(LiveStack):
    """Another gunicorn on the same database, with its own DATA_DIR (what a second machine has)."""

    @property
    def data_dir(self) -> Path:
        return self.work / "data-instance-2"

    @property
    def log_path(self) -> Path:
        return self.logs / "gunicorn-2.log"


def _token(instance: LiveStack, email: str, password: str) -> str:
    answer = call(instance.port, "POST", "/v1/auth/token", body={"email": email, "password": password})
    assert answer.status == 200, answer.body
    return str(answer.body["access"])


def _emails(answer: Any) -> set[str]:
    return {user["email"] for user in answer.body} if answer.status == 200 and isinstance(answer.body, list) else set()


def test_a_deleted_portals_cached_route_never_serves_the_next_owner_of_its_slug(
    stack: LiveStack,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    stack.manage("create_org", "Org B", "--admin-email", "b-admin@example.com", "--admin-password", "b-pass-1234-xyz")
    stack.start_gunicorn()
    second = SecondInstance(stack.work, stack.logs, socket_dir=stack.socket_dir, secret_key=stack.secret_key)
    try:
        second.start_gunicorn()
        token_a = admin_token(stack)
        token_b = _token(stack, "b-admin@example.com", "b-pass-1234-xyz")

        # Org A's portal `shared`, with a customer, routed (and so cached) on instance 2.
        created = call(stack.port, "POST", "/v1/portal", token=token_a, body={"name": "Shared", "slug": "shared"})
        assert created.status == 201, created.body
        invited = call(stack.port, "POST", f"/v1/portal/{created.body['id']}/users", token=token_a,
                       body={"users": [{"email": "a-customer@example.com"}], "send_email": False})  # fmt: skip
        assert invited.status == 201, invited.body
        for _ in range(8):  # both workers of instance 2 cache the route
            warm = call(second.port, "GET", "/v1/customer-portal/users", host=HOST, token=token_a)
            assert warm.status == 200 and _emails(warm) == {"a-customer@example.com"}, warm.body

        # Instance 1: A deletes it; B creates `shared` again, with a customer of its own.
        assert call(stack.port, "DELETE", f"/v1/portal/{created.body['id']}", token=token_a).status == 200
        reborn = call(stack.port, "POST", "/v1/portal", token=token_b, body={"name": "B's shared", "slug": "shared"})
        assert reborn.status == 201, reborn.body
        assert reborn.body["id"] != created.body["id"]
        invited = call(stack.port, "POST", f"/v1/portal/{reborn.body['id']}/users", token=token_b,
                       body={"users": [{"email": "b-customer@example.com"}], "send_email": False})  # fmt: skip
        assert invited.status == 201, invited.body
        changed_at = time.monotonic()

        # Instance 2, as it is: A keeps asking (must never see B's customer), B waits to be served.
        leaks, errors, statuses_a, statuses_b = 0, 0, [], []
        served_after = None
        while time.monotonic() - changed_at < NEW_OWNER_WITHIN + 2:
            as_a = call(second.port, "GET", "/v1/customer-portal/users", host=HOST, token=token_a)
            as_b = call(second.port, "GET", "/v1/customer-portal/users", host=HOST, token=token_b)
            statuses_a.append(as_a.status)
            statuses_b.append(as_b.status)
            leaks += "b-customer@example.com" in _emails(as_a)
            errors += (as_a.status >= 500) + (as_b.status >= 500)
            if served_after is None and _emails(as_b) == {"b-customer@example.com"}:
                served_after = time.monotonic() - changed_at
            if served_after is not None and len(statuses_a) >= 20:
                break
            time.sleep(0.1)
        print_report(
            capsys,
            f"two instances, no Redis: {len(statuses_a) + len(statuses_b)} requests on instance 2 after the change; "
            f"leaks {leaks}, 5xx {errors}; org A saw {sorted(set(statuses_a))}; "
            f"new owner served after {served_after if served_after is None else round(served_after, 2)} s",
        )
        assert leaks == 0
        assert errors == 0, (statuses_a, statuses_b, second.log_tail())
        assert set(statuses_a) == {404}  # a stale route fails closed: never 200, never 5xx
        assert served_after is not None and served_after <= NEW_OWNER_WITHIN
        assert "b-customer@example.com" not in second.log_text()
    finally:
        second.stop_gunicorn()
