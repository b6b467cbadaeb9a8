"""Isolation: 3 organizations x 2 portals, every caller against every object on every endpoint.

The only successes are the intended ones; everything foreign is a 404 (a portal token on a
foreign portal: 401), and no response ever carries another portal's e-mails or ids. Each portal
has a custom domain, a `www.` one: the first of each organization's verified (it routes exactly like
the default domain), the second pending (a 404 for everyone); the bare twin of a `www.` host is
nobody's (404). The two-instance case is tests/test_two_instances.py (real gunicorns, marked slow).
"""

import itertools
from dataclasses import dataclass, field

import pytest
from django.db import connection, transaction
from django_tenants.utils import get_public_schema_name, tenant_context
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import OrgMembership, User
from accounts.selectors import admin_organizations
from customer_portal.models import Invitation, PortalSession, PortalUser
from events.services import Target, record
from events.webhook_models import WebhookDelivery, WebhookEndpoint
from events.webhook_services import webhook_endpoint_create
from portals.domain_verification import challenge_name, custom_domain_verify
from portals.models import Domain, Portal
from portals.provisioning import spare_pool_refill
from tests.conftest import invite, make_portal, portal_login
from tests.dns_server import DnsZone
from tests.factories import OrganizationFactory, OrgMembershipFactory, UserFactory
from tests.jobs import run_jobs
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.django_db


@dataclass
class World:
    portals: list[Portal] = field(default_factory=list)
    admin_of: dict[str, User] = field(default_factory=dict)  # org slug -> admin
    member_of: dict[str, User] = field(default_factory=dict)  # org slug -> plain member
    portal_user_token: dict[str, str] = field(default_factory=dict)  # portal slug -> access token
    secrets: dict[str, set[str]] = field(default_factory=dict)  # portal slug -> its e-mails and ids
    objects: dict[str, dict[str, str]] = field(default_factory=dict)  # portal slug -> user/invitation/session id
    routed_custom: dict[str, str] = field(default_factory=dict)  # portal slug -> its verified custom host
    unrouted: dict[str, list[str]] = field(default_factory=dict)  # portal slug -> hosts that must be nobody's


@pytest.fixture
def world(spare_pool: None, dns_zone: DnsZone) -> World:
    world = World()
    spare_pool_refill(size=6)  # inside the test's transaction: rolled back with it
    for org_index in range(3):
        organization = OrganizationFactory(slug=f"iso-org-{org_index}")
        admin = OrgMembershipFactory(organization=organization, role=OrgMembership.Role.ADMIN).user
        world.admin_of[organization.slug] = admin
        world.member_of[organization.slug] = OrgMembershipFactory(
            organization=organization, role=OrgMembership.Role.MEMBER
        ).user
        for portal_index in range(2):
            slug = f"iso-{org_index}-{portal_index}"
            custom = f"www.{slug}.example"
            portal = make_portal(admin, name=slug, slug=slug, custom_domain=custom)
            world.portals.append(portal)
            if portal_index == 0:  # proven through the real lookup, against the loopback DNS server
                token = Domain.objects.get(domain=custom).verification_token
                dns_zone.txt[challenge_name(custom)] = [token]
                assert custom_domain_verify(portal=portal).verification_status == "verified"
                world.routed_custom[slug] = custom
                world.unrouted[slug] = [f"{slug}.example"]  # the bare twin: registered by nobody
            else:
                world.unrouted[slug] = [custom, f"{slug}.example"]  # pending: not routed yet
            guest_email, pending_email = f"guest@{slug}.example", f"pending@{slug}.example"
            UserFactory(email=guest_email)
            invite(portal, guest_email, pending_email, invited_by=admin)
            status, tokens = portal_login(f"{slug}.localhost", guest_email)
            assert status == 200
            world.portal_user_token[slug] = tokens["access"]
            with tenant_context(portal):
                guest = PortalUser.objects.get(email=guest_email)
                world.objects[slug] = {
                    "user": str(guest.id),
                    "invitation": str(Invitation.objects.get().id),
                    "session": str(PortalSession.objects.get().id),
                }
            world.secrets[slug] = {guest_email, pending_email, str(portal.id), *world.objects[slug].values()}
    connection.set_schema_to_public()
    return world


# (method, path template, body, destructive). Destructive calls are made only by callers who must be refused.
PORTAL_ENDPOINTS = [
    ("get", "/v1/portal/{portal}", None, False),
    ("patch", "/v1/portal/{portal}", {"name": "renamed"}, True),
    ("delete", "/v1/portal/{portal}", None, True),
    ("get", "/v1/portal/{portal}/users", None, False),
    ("post", "/v1/portal/{portal}/users?dry_run=true", {"users": [{"email": "x@example.com"}]}, False),
    ("delete", "/v1/portal/{portal}/users/{user}", None, True),
]
CUSTOMER_PORTAL_ENDPOINTS = [
    ("get", "/v1/customer-portal/config", None, False),
    ("patch", "/v1/customer-portal/config", {"display_name": "hacked"}, True),
    ("get", "/v1/customer-portal/users", None, False),
    ("get", "/v1/customer-portal/users/{user}", None, False),
    ("delete", "/v1/customer-portal/users/{user}", None, True),
    ("delete", "/v1/customer-portal/users/{user}/access", None, True),
    ("post", "/v1/customer-portal/users/invite", {"email": "x@example.com"}, True),
    ("get", "/v1/customer-portal/invitations", None, False),
    ("post", "/v1/customer-portal/invitations/{invitation}/resend", None, True),
    ("delete", "/v1/customer-portal/invitations/{invitation}", None, True),
    ("get", "/v1/customer-portal/stats", None, False),
    ("get", "/v1/customer-portal/sessions", None, False),
    ("delete", "/v1/customer-portal/sessions/{session}", None, True),
    ("patch", "/v1/customer-portal/features/chat/toggle", None, True),
    ("get", "/v1/customer-portal/me", None, False),
    ("get", "/v1/customer-portal/audit-events", None, False),
]
PORTAL_USER_ENDPOINTS = {"/v1/customer-portal/config", "/v1/customer-portal/me"}


def _callers(world: World) -> list[tuple[str, str, str | None]]:
    """(name, kind, token); kind is admin:<org>, member:<org>, portal-user:<portal> or anonymous."""
    callers: list[tuple[str, str, str | None]] = [("anonymous", "anonymous", None)]
    for org, admin in world.admin_of.items():
        callers.append((f"admin of {org}", f"admin:{org}", str(RefreshToken.for_user(admin).access_token)))
    for org, member in world.member_of.items():
        callers.append((f"member of {org}", f"member:{org}", str(RefreshToken.for_user(member).access_token)))
    for slug, token in world.portal_user_token.items():
        callers.append((f"portal user of {slug}", f"portal-user:{slug}", token))
    return callers


# The owner's successes that are not 200 (API.md); the owner's destructive calls are not made here.
CREATED = {("post", "/v1/portal/{portal}/users"), ("post", "/v1/customer-portal/users/invite")}


def _expected(kind: str, target: Portal, method: str, template: str) -> int:
    """The one status API.md gives a caller for `method template` about `target` (its context and its objects)."""
    role, _, scope = kind.partition(":")
    path, _, query = template.partition("?")
    if role == "anonymous":
        return 401
    if role == "portal-user":
        if scope != target.slug or path.startswith("/v1/portal"):
            return 401  # a portal token anywhere but its own portal
        return 200 if path in PORTAL_USER_ENDPOINTS else 403
    if role == "admin" and scope == target.organization.slug:
        if path == "/v1/customer-portal/me":
            return 403
        return 201 if (method, path) in CREATED and query != "dry_run=true" else 200
    return 404


class Matrix:
    def __init__(self, world: World) -> None:
        self.world = world
        self.calls = 0
        self.problems: list[str] = []
        self.client = APIClient()  # one client: building one loads every middleware again

    def check(
        self, name: str, token: str | None, method: str, path: str, body: object, expected: int,
        visible: str, **extra: str,
    ) -> None:  # fmt: skip
        if token:
            extra = {**extra, "HTTP_AUTHORIZATION": f"Bearer {token}"}
        response = getattr(self.client, method)(path, body, format="json", **extra)
        self.calls += 1
        where = (extra.get("HTTP_X_PORTAL_ID") and "by header") or extra["HTTP_HOST"]
        if response.status_code != expected:
            self.problems.append(f"{name} ({where}): {method.upper()} {path} -> {response.status_code}, not {expected}")
        text = response.content.decode(errors="replace")
        for slug, secrets in self.world.secrets.items():
            if slug != visible:
                self.problems += [f"{name}: {method.upper()} {path} shows {s} of {slug}" for s in secrets if s in text]


def test_the_matrix(world: World):
    matrix = Matrix(world)
    for (name, kind, token), target in itertools.product(_callers(world), world.portals):
        ids = {"portal": str(target.id), **world.objects[target.slug]}
        calls = [(m, t, b, d, {"HTTP_HOST": "localhost"}) for m, t, b, d in PORTAL_ENDPOINTS]
        calls += [
            (m, t, b, d, extra)
            for m, t, b, d in CUSTOMER_PORTAL_ENDPOINTS
            for extra in (
                {"HTTP_HOST": f"{target.slug}.localhost"},
                {"HTTP_HOST": "localhost", "HTTP_X_PORTAL_ID": str(target.id)},
            )
        ]
        reads = [(m, t, b, d) for m, t, b, d in CUSTOMER_PORTAL_ENDPOINTS if m == "get"]
        if target.slug in world.routed_custom:  # a verified custom host is the portal, exactly as its default one
            calls += [(m, t, b, d, {"HTTP_HOST": world.routed_custom[target.slug]}) for m, t, b, d in reads]
        for method, template, body, destructive, extra in calls:
            expected = _expected(kind, target, method, template)
            if destructive and expected in (200, 201):
                continue  # the owner's own writes are tested elsewhere; here they would destroy the fixture
            matrix.check(name, token, method, template.format(**ids), body, expected, target.slug, **extra)
        for host, (method, template, body, _) in itertools.product(world.unrouted[target.slug], reads):
            matrix.check(name, token, method, template.format(**ids), body, 404, "", HTTP_HOST=host)

    # An admin in its own portal's context, naming another portal's objects: not found there.
    for (org, admin), own, other in itertools.product(world.admin_of.items(), world.portals, world.portals):
        if own.organization.slug != org or other == own:
            continue
        token = str(RefreshToken.for_user(admin).access_token)
        for method, template, body, _ in CUSTOMER_PORTAL_ENDPOINTS:
            if "{" in template:
                path = template.format(**world.objects[other.slug])
                matrix.check(
                    f"admin of {org}", token, method, path, body, 404, own.slug, HTTP_HOST=f"{own.slug}.localhost"
                )

    print(f"isolation matrix: {matrix.calls} calls")
    assert matrix.calls > 2500
    assert not matrix.problems, "\n".join(matrix.problems[:40]) + f"\n({len(matrix.problems)} problems)"


def test_the_schema_is_reset_after_an_exception_and_between_portals(world: World, monkeypatch):
    """Interleaved requests to two portals on one connection, one of them failing mid-view."""
    first, second = world.portals[0], world.portals[2]
    client = APIClient()
    client.raise_request_exception = False
    admin_token = {org: str(RefreshToken.for_user(a).access_token) for org, a in world.admin_of.items()}

    def users_of(portal: Portal) -> set[str]:
        response = client.get(
            "/v1/customer-portal/users",
            HTTP_HOST=f"{portal.slug}.localhost",
            HTTP_AUTHORIZATION=f"Bearer {admin_token[portal.organization.slug]}",
        )
        assert response.status_code == 200
        return {user["email"] for user in response.json()}

    assert users_of(first) == {f"guest@{first.slug}.example", f"pending@{first.slug}.example"}

    def explode(**kwargs: object) -> None:
        raise RuntimeError("injected failure while the portal's schema is selected")

    monkeypatch.setattr("customer_portal.api.views.portal_stats", explode)
    failed = client.get(
        "/v1/customer-portal/stats",
        HTTP_HOST=f"{first.slug}.localhost",
        HTTP_AUTHORIZATION=f"Bearer {admin_token[first.organization.slug]}",
    )
    assert failed.status_code == 500
    assert failed.json() == {"detail": "Internal server error."}

    main = client.get("/healthz", HTTP_HOST="localhost")
    assert main.status_code == 200
    assert connection.schema_name == get_public_schema_name()
    assert users_of(second) == {f"guest@{second.slug}.example", f"pending@{second.slug}.example"}
    assert users_of(first) == {f"guest@{first.slug}.example", f"pending@{first.slug}.example"}


def test_the_audit_trail_is_only_its_organizations_admins(world: World):
    """Every caller against /v1/audit-events and its export, unfiltered and filtered by each portal and org:
    an admin sees exactly its organization's events (which name its people), anyone else nothing."""
    from events.models import AuditEvent

    client = APIClient(HTTP_HOST="localhost")
    problems: list[str] = []
    slugs_of = {org: {p.slug for p in world.portals if p.organization.slug == org} for org in world.admin_of}
    for name, kind, token in _callers(world):
        role, _, scope = kind.partition(":")
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        paths = ["/v1/audit-events", "/v1/audit-events/export"]
        paths += [f"/v1/audit-events?portal_id={p.id}" for p in world.portals]
        paths += [f"/v1/audit-events?organization_id={p.organization_id}" for p in world.portals]
        for path in paths:
            response = client.get(path, **headers)
            own_org = {str(p.organization_id) for p in world.portals if p.organization.slug == scope}
            expected = {"anonymous": 401, "portal-user": 401, "member": 403}.get(role, 200)
            if role == "admin" and "organization_id=" in path and path.rsplit("=", 1)[1] not in own_org:
                expected = 404
            if response.status_code != expected:
                problems.append(f"{name}: GET {path} -> {response.status_code}, not {expected}")
            body = b"".join(response.streaming_content) if response.streaming else response.content
            text = body.decode()
            visible = slugs_of.get(scope, set()) if role == "admin" else set()
            for slug, secrets in world.secrets.items():
                if slug not in visible:
                    problems += [f"{name}: GET {path} shows {s} of {slug}" for s in secrets if s in text]
        if role == "admin":  # and it does see its own: every event of its organization
            listed = client.get("/v1/audit-events?limit=500", **headers).json()
            organization_id = next(iter(own_org))
            assert {event["id"] for event in listed} == {
                str(i) for i in AuditEvent.objects.filter(organization_id=organization_id).values_list("id", flat=True)
            }
            assert any(f"guest@{slug}.example" in str(listed) for slug in slugs_of[scope])
    assert not problems, "\n".join(problems[:40]) + f"\n({len(problems)} problems)"


WEBHOOK_ENDPOINTS = [
    ("get", "/v1/webhooks/{webhook}", None, False),
    ("patch", "/v1/webhooks/{webhook}", {"description": "hacked"}, True),
    ("delete", "/v1/webhooks/{webhook}", None, True),
    ("post", "/v1/webhooks/{webhook}/rotate-secret", None, True),
    ("post", "/v1/webhooks/{webhook}/test", None, True),
    ("get", "/v1/webhooks/{webhook}/deliveries", None, False),
    ("post", "/v1/webhooks/{webhook}/deliveries/{delivery}/retry", None, True),
]


def _webhook_expected(role: str, scope: str, org: str) -> int:
    """The status for a caller (role:scope) about an endpoint of `org`: no account is a 401, a foreign one a 404."""
    if role in ("anonymous", "portal-user"):
        return 401
    return 200 if (role, scope) == ("admin", org) else 404


def test_webhook_endpoints_and_events_stay_in_their_organization(world: World, receiver: WebhookReceiver):
    """Each organization's endpoint: only its admins reach it (404 for everyone else, 401 without an account),
    no answer shows another organization's endpoints, and only its own organization's events reach it."""
    endpoints: dict[str, WebhookEndpoint] = {}
    for org, admin in world.admin_of.items():
        organization = admin_organizations(user=admin).get()
        endpoints[org] = webhook_endpoint_create(organization=organization, url=receiver.url(f"/{org}"))
    run_jobs(queues=["webhooks"])
    deliveries = {org: str(WebhookDelivery.objects.get(endpoint=endpoint).id) for org, endpoint in endpoints.items()}
    shown = {org: {str(endpoint.id), endpoint.url, endpoint.secret} for org, endpoint in endpoints.items()}
    receiver.clear()
    client, problems, calls = APIClient(HTTP_HOST="localhost"), [], 0
    for (name, kind, token), (org, endpoint) in itertools.product(_callers(world), endpoints.items()):
        role, _, scope = kind.partition(":")
        extra = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        ids = {"webhook": str(endpoint.id), "delivery": deliveries[org]}
        for method, template, body, destructive in WEBHOOK_ENDPOINTS:
            expected = _webhook_expected(role, scope, org)
            if destructive and expected == 200:
                continue
            response = getattr(client, method)(template.format(**ids), body, format="json", **extra)
            calls += 1
            if response.status_code != expected:
                problems.append(
                    f"{name}: {method.upper()} {template} of {org} -> {response.status_code}, not {expected}"
                )
        listed = client.get("/v1/webhooks", **extra)
        text = listed.content.decode()
        for other, values in shown.items():
            visible = role == "admin" and scope == other
            problems += [f"{name}: GET /v1/webhooks shows {v} of {other}" for v in values if v in text and not visible]
    assert calls > 100
    assert not problems, "\n".join(problems[:40])

    first, *_ = world.portals
    with transaction.atomic():
        record(
            action="portal_user.invited",
            organization_id=first.organization_id,
            portal_id=first.id,
            target=Target(type="portal_user", id="someone"),
        )
    run_jobs(queues=["webhooks"])
    assert [request.path for request in receiver.received()] == [f"/{first.organization.slug}"]
