"""Which portal a /v1/customer-portal request is about: its host, or X-Portal-ID on a main host."""

import uuid

from django.http import HttpRequest
from django_tenants.utils import get_public_schema_name
from rest_framework.request import Request

from portals.models import Portal
from portals.routing import portal_for_id
from portalsite.db import tenant_connection
from portalsite.errors import NotFoundError
from portalsite.requests import request_memo

PORTAL_HEADER = "HTTP_X_PORTAL_ID"
MISSING_PORTAL = "No portal given: call a portal's own host, or send an X-Portal-ID header on the API host."
UNKNOWN_PORTAL = "Portal not found."  # also for a foreign portal: the two must look the same


def request_portal(request: HttpRequest | Request) -> Portal:
    """The request's portal, with the connection switched to its schema; NotFoundError when there is none."""
    return request_memo(request, "portal", lambda: _portal_of(request))


def _portal_of(request: HttpRequest | Request) -> Portal:
    tenant = getattr(request, "tenant", None)
    if isinstance(tenant, Portal) and tenant.schema_name != get_public_schema_name():
        return tenant  # routed by host (portals.middleware already selected the schema)
    header = request.META.get(PORTAL_HEADER, "").strip()
    if not header:
        raise NotFoundError(MISSING_PORTAL)
    try:
        portal_id = uuid.UUID(header)
    except ValueError as exc:
        raise NotFoundError(UNKNOWN_PORTAL) from exc
    portal = portal_for_id(portal_id)
    if portal is None:
        raise NotFoundError(UNKNOWN_PORTAL)
    tenant_connection.set_tenant(portal)
    return portal


def request_names_a_portal(request: HttpRequest | Request) -> bool:
    """Whether the request is about a portal at all (a portal host, or X-Portal-ID on a main host)."""
    tenant = getattr(request, "tenant", None)
    on_portal_host = tenant is not None and tenant.schema_name != get_public_schema_name()
    return on_portal_host or bool(request.META.get(PORTAL_HEADER, "").strip())
