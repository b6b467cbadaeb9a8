"""Who is acting, and through what: the context every recorded event takes its actor, `via`, IP, user agent
and request id from.

A context variable, set by the interface in front of the services: `AuditContextMiddleware` for requests
(the API, the admin, the portal pages), `events.commands.OperatorCommand` for management commands.
Anything else (a job, a periodic task) runs in the default context: `via=system`, actor `system`.
The actor of a request is read when an event is recorded, not when the request starts: the API
authenticates inside the view.
"""

import contextvars
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from django.http import HttpRequest, HttpResponseBase

from accounts.lockout import client_ip
from accounts.models import User


@dataclass(frozen=True)
class Actor:
    type: str  # AuditEvent.ActorType
    id: str = ""
    email: str = ""


SYSTEM = Actor(type="system")
OPERATOR = Actor(type="operator")


def user_actor(user: User) -> Actor:
    """An account as an actor: superusers are the operators of the admin site, anyone else a user."""
    return Actor(type="operator" if user.is_superuser else "user", id=str(user.id), email=user.email)


@dataclass(frozen=True)
class AuditContext:
    via: str = "system"  # AuditEvent.Via
    actor: Actor | None = SYSTEM  # None: the signed-in account of `request`, read when an event is recorded
    request: HttpRequest | None = None
    ip_address: str | None = None
    user_agent: str = ""
    request_id: str = ""

    def current_actor(self) -> Actor:
        if self.actor is not None:
            return self.actor
        user = getattr(self.request, "user", None)
        if isinstance(user, User) and user.is_authenticated:
            return user_actor(user)
        return Actor(type="user")  # an anonymous request (an invitation being accepted names its own actor)


_SYSTEM_CONTEXT = AuditContext()  # frozen: safe to share as the default
_context: contextvars.ContextVar[AuditContext] = contextvars.ContextVar("audit_context", default=_SYSTEM_CONTEXT)


def audit_context_get() -> AuditContext:
    return _context.get()


@contextmanager
def audit_context(context: AuditContext) -> Iterator[AuditContext]:
    """Run the block in `context` (restored afterwards, whatever the block set inside)."""
    token = _context.set(context)
    try:
        yield context
    finally:
        _context.reset(token)


def audit_actor_set(actor: Actor) -> None:
    """Name the actor of the rest of the current context: the portal authentication does, once it knows the
    portal user behind a token or a browser session."""
    _context.set(replace(_context.get(), actor=actor))


@contextmanager
def operator_context() -> Iterator[AuditContext]:
    """What a management command runs in: an operator at the shell."""
    with audit_context(AuditContext(via="cli", actor=OPERATOR)) as context:
        yield context


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def request_id_from(request: HttpRequest) -> str:
    """The caller's (or the proxy's) X-Request-ID when it is a sane token, else a new one."""
    given = str(request.headers.get("X-Request-ID", ""))
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex


def via_of(path: str) -> str:
    """Which interface a path belongs to: the admin, the API, or else the portal pages."""
    if path.startswith("/admin/"):
        return "admin"
    if path.startswith(("/v1/", "/api/")):
        return "api"
    return "portal"


class AuditContextMiddleware:
    """Sets the audit context for each request and echoes its request id (`X-Request-ID`)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        context = AuditContext(
            via=via_of(request.path),
            actor=None,
            request=request,
            ip_address=client_ip(request) or None,
            user_agent=str(request.headers.get("User-Agent", ""))[:512],
            request_id=request_id_from(request),
        )
        with audit_context(context):
            response = self.get_response(request)
        response["X-Request-ID"] = context.request_id
        return response
