"""Schemathesis against the OpenAPI schema the app serves: every operation, as the owner and as a portal user.

The schema is fetched from GET /api/schema/ on the main host and every operation is called in-process
through the WSGI application, a fixed number of deterministic examples each (positive and negative
data, plus Schemathesis' coverage cases). Every response must be a non-5xx that the schema documents:
its status code, content type, body (including the 422 HTTPValidationError shape) and headers.

Path parameters are drawn at random, or, for some examples, name real objects of the test portal (the
portal itself, a member with a live session, a pending invitation, a feature), so that the success
responses of GET, PATCH and DELETE on them are checked too.

Everything runs inside the test's `db` transaction (the WSGI app shares the thread and its connection),
so whatever the examples create, change or delete (the test portal included) is rolled back afterwards.
Run with -s for the figures: operations, examples and seconds per persona.
"""

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django_tenants.utils import tenant_context
from hypothesis import strategies as st
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis import Case, HookContext
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import TestPhase
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import User
from customer_portal.models import PortalSession, PortalUser
from customer_portal.services import invitation_create
from portals.models import Portal
from tests.conftest import MAIN_HOST, TEST_PORTAL_HOST, invite, portal_login
from tests.factories import UserFactory

MAX_EXAMPLES = 15  # per operation and persona, for the fuzzing phase (the coverage phase adds its fixed cases)
SEED = 20_240_508  # with `deterministic`, every run draws the same examples
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
PORTAL_HEADER = "X-Portal-ID"
PORTAL_USER_EMAIL = "schemathesis-portal-user@example.com"
INVITEE_EMAIL = "schemathesis-invitee@example.com"


def _load_schema() -> schemathesis.BaseSchema:
    """The schema as the app serves it on the main host, with bounded, reproducible generation.

    Loaded at collection, so that each operation is a test of its own; serving the schema reads no database."""
    from django.core.wsgi import get_wsgi_application  # settings are pytest's (portalsite.settings_test)

    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "suppress-health-check": ["all"],
            "generation": {
                "mode": "all",  # positive and negative data
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "no-shrink": True,  # report the failing example as drawn: the examples share the test's database state
                "database": "none",  # no .hypothesis directory: a run depends on the seed only
            },
            "phases": {"stateful": {"enabled": False}},
        }
    )
    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application(), config=config)


schema = _load_schema()

# Real path parameter values for the running test, by path prefix (set by the `persona` fixture).
REAL_PATH_PARAMETERS: dict[str, dict[str, str]] = {}


def _real_path_parameters(path: str, names: Iterable[str]) -> dict[str, str]:
    real = next((values for prefix, values in REAL_PATH_PARAMETERS.items() if path.startswith(prefix)), {})
    return {name: real[name] for name in names if name in real}


@schema.hook
def flatmap_path_parameters(context: HookContext, path_parameters: dict[str, Any]) -> st.SearchStrategy:
    """Fuzzing: half the time, name a real object of the test portal instead of a random one."""
    real = _real_path_parameters(context.operation.path, path_parameters or {}) if context.operation else {}
    if not real:
        return st.just(path_parameters)
    return st.sampled_from([path_parameters, {**path_parameters, **real}])


def _aim_at_real_objects(case: Case) -> None:
    """Coverage: a case about the body, query or headers names real objects, so that it reaches its validation
    (with a random id, it would stop at a 404). Cases about the path parameters themselves keep theirs."""
    meta = case.meta
    if meta is None or meta.phase.name != TestPhase.COVERAGE or not case.path_parameters:
        return
    if getattr(meta.phase.data, "parameter_location", None) != ParameterLocation.PATH:
        case.path_parameters.update(_real_path_parameters(case.operation.path, case.path_parameters))


@dataclass
class Persona:
    """Who calls, where: `base_url` picks the host (and so the URLconf and schema), `headers` the identity."""

    name: str
    base_url: str
    headers: dict[str, str]
    calls: Counter[str] = field(default_factory=Counter)
    phases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)


@dataclass
class Tally:
    """Per persona: examples run per operation, responses per status, and the seconds its tests took."""

    calls: Counter[str] = field(default_factory=Counter)
    phases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0


TALLIES: dict[str, Tally] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_figures() -> Iterator[None]:
    yield
    for name, tally in TALLIES.items():  # shown with -s: the figures for the closing note
        print(
            f"\nschemathesis {name}: {len(tally.calls)} operations, {tally.calls.total()} examples "
            f"({dict(tally.phases)}), {tally.seconds:.1f}s; responses by status: {dict(sorted(tally.statuses.items()))}"
        )


@pytest.fixture
def unthrottled(settings: Any) -> None:
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**rates, **dict.fromkeys(rates, "100000/min")},  # every scope, far out of reach
    }


@dataclass
class PortalObjects:
    member: PortalUser  # active, logged in on the portal's host: the portal user persona
    access: str  # the member's portal-scoped access token
    session_id: str  # the member's live session
    invitation_id: str  # a pending invitation of someone without an account


def _portal_objects(portal: Portal) -> PortalObjects:
    UserFactory(email=PORTAL_USER_EMAIL)
    invite(portal, PORTAL_USER_EMAIL)
    with tenant_context(portal):
        invitation = invitation_create(portal=portal, email=INVITEE_EMAIL, invited_by=None)
    status, tokens = portal_login(TEST_PORTAL_HOST, PORTAL_USER_EMAIL)
    assert status == 200, tokens
    with tenant_context(portal):
        member = PortalUser.objects.get(email=PORTAL_USER_EMAIL)
        session = PortalSession.objects.get(portal_user=member)
    return PortalObjects(member, tokens["access"], str(session.id), str(invitation.id))


def _owner(owner: User, portal: Portal, _objects: PortalObjects) -> Persona:
    """The owner (the session admin) with a real access token, on the API host, naming the test portal by header."""
    token = RefreshToken.for_user(owner).access_token
    return Persona("owner", f"http://{MAIN_HOST}", {"Authorization": f"Bearer {token}", PORTAL_HEADER: str(portal.id)})


def _portal_user(_owner: User, _portal: Portal, objects: PortalObjects) -> Persona:
    """The portal user, with the portal-scoped token from logging in on the portal's host (which names the portal)."""
    return Persona("portal_user", f"http://{TEST_PORTAL_HOST}", {"Authorization": f"Bearer {objects.access}"})


PERSONAS: dict[str, Callable[[User, Portal, PortalObjects], Persona]] = {
    "owner": _owner,
    "portal_user": _portal_user,
}


@pytest.fixture(params=list(PERSONAS))
def persona(
    request: pytest.FixtureRequest, db: None, unthrottled: None, session_admin: User, test_portal: Portal
) -> Iterator[Persona]:
    started = time.monotonic()
    objects = _portal_objects(test_portal)
    REAL_PATH_PARAMETERS.update(
        {
            "/v1/portal/{portal_id}": {"portal_id": str(test_portal.id), "user_id": str(objects.member.id)},
            "/v1/customer-portal/users/{id}": {"id": str(objects.member.id)},
            "/v1/customer-portal/invitations/{id}": {"id": objects.invitation_id},
            "/v1/customer-portal/sessions/{id}": {"id": objects.session_id},
            "/v1/customer-portal/features/{feature_id}": {"feature_id": "documents"},
        }
    )
    persona = PERSONAS[request.param](session_admin, test_portal, objects)
    yield persona
    REAL_PATH_PARAMETERS.clear()
    tally = TALLIES.setdefault(persona.name, Tally())
    tally.calls.update(persona.calls)
    tally.phases.update(persona.phases)
    tally.statuses.update(persona.statuses)
    tally.seconds += time.monotonic() - started


@contextmanager
def in_test_transaction() -> Iterator[None]:
    """Let the WSGI application run in the test's thread, connection and transaction, as django.test.Client
    does: closing "old" connections at the start and end of a request would end the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@schema.parametrize()
def test_every_operation_answers_as_documented(case: Case, persona: Persona) -> None:
    persona.calls[case.operation.label] += 1
    persona.phases[str(case.meta.phase.name) if case.meta else "?"] += 1
    _aim_at_real_objects(case)
    if PORTAL_HEADER not in persona.headers:
        case.headers.pop(PORTAL_HEADER, None)  # on a portal's own host, the host names the portal
    with in_test_transaction():
        response = case.call_and_validate(base_url=persona.base_url, headers=persona.headers, checks=CHECKS)
    persona.statuses[response.status_code] += 1
