"""/v1/audit-events: the trail of the caller's organizations; its list and export serve the routed portal's
trail too (`customer_portal.api.views.PortalAuditEventViewSet`)."""

import csv
import io
import json
import uuid
from collections.abc import Collection, Iterable, Iterator
from typing import Any
from urllib.parse import urlencode

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import IsProductionOrgAdmin, request_admin_organization_ids
from events.api.serializers import (
    AuditEventExportQueryInput,
    AuditEventOutput,
    AuditEventPageQueryInput,
)
from events.chain import audit_event_data
from events.models import AuditEvent
from events.selectors import OLDEST_FIRST, audit_event_list, audit_event_page, cursor_decode, cursor_encode
from portalsite.api.serializers import query_params_validated
from portalsite.errors import NotFoundError

# Rows per round trip of the export's server-side cursor: memory stays this many rows, whatever the range.
EXPORT_CHUNK = 2000

CSV_COLUMNS = [
    "id", "occurred_at", "action", "organization_id", "portal_id", "actor_type", "actor_id", "actor_email", "via",
    "ip_address", "user_agent", "target_type", "target_id", "target_label", "changes", "request_id",
]  # fmt: skip

LINK_HEADER = OpenApiParameter(
    "Link",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=[200],
    description='`<url>; rel="next"` when there are older events: the same query with a `cursor`.',
)


class NDJSONRenderer(JSONRenderer):
    """Lets `Accept: application/x-ndjson` through negotiation; only errors are rendered (as JSON)."""

    media_type = "application/x-ndjson"
    format = "ndjson"


class CSVRenderer(JSONRenderer):
    media_type = "text/csv"
    format = "csv"


def audit_event_page_response(request: Request, events: QuerySet[AuditEvent], query: dict[str, Any]) -> Response:
    """A page of `events`, newest first, with a `Link` to the next one when there is more."""
    after = None
    if query.get("cursor"):
        after = cursor_decode(query["cursor"])
        if after is None:
            error = ValidationError({"cursor": ["Not a cursor from a Link header."]})
            error.loc_root = "query"  # type: ignore[attr-defined]  # read by the exception handler
            raise error
    page, last = audit_event_page(events, limit=query["limit"], after=after)
    headers = {}
    if last is not None:
        params = {**request.query_params.dict(), "cursor": cursor_encode(last)}
        headers["Link"] = f'<{request.build_absolute_uri(request.path)}?{urlencode(params)}>; rel="next"'
    return Response([audit_event_data(event) for event in page], headers=headers)


def _csv_row(event: AuditEvent) -> list[str]:
    data = audit_event_data(event)
    flat = {
        **data,
        "actor_type": event.actor_type,
        "actor_id": event.actor_id,
        "actor_email": event.actor_email,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "target_label": event.target_label,
        "changes": json.dumps(event.changes, sort_keys=True),
    }
    return [_csv_safe(flat[column]) for column in CSV_COLUMNS]


def _csv_safe(value: object) -> str:
    """A cell no spreadsheet runs as a formula (a label is whatever someone typed): such text gets a `'`."""
    text = "" if value is None else str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_lines(events: Iterable[AuditEvent]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for event in events:
        writer.writerow(_csv_row(event))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def audit_event_export_response(events: QuerySet[AuditEvent], *, format: str) -> StreamingHttpResponse:
    """Every event of `events`, oldest first, streamed through a server-side cursor: memory stays flat."""
    rows = events.order_by(*OLDEST_FIRST).iterator(chunk_size=EXPORT_CHUNK)
    if format == "csv":
        response = StreamingHttpResponse(_csv_lines(rows), content_type="text/csv; charset=utf-8")
    else:
        lines = (json.dumps(audit_event_data(event), separators=(",", ":")) + "\n" for event in rows)
        response = StreamingHttpResponse(lines, content_type="application/x-ndjson")
    response["Content-Disposition"] = f'attachment; filename="audit-events.{format}"'
    return response


class AuditEventViewSet(viewsets.ViewSet):
    """The events of the organizations the caller administers: never anyone else's."""

    permission_classes = [IsProductionOrgAdmin]
    lookup_field = "id"  # none: this resource is only listed (IsProductionOrgAdmin asks)

    def _events(self, query: dict[str, Any]) -> QuerySet[AuditEvent]:
        organization_ids: Collection[uuid.UUID] = request_admin_organization_ids(self.request)
        wanted = query.get("organization_id")
        if wanted is not None:
            if wanted not in organization_ids:
                raise NotFoundError()  # another organization's trail is indistinguishable from none
            organization_ids = [wanted]
        return audit_event_list(
            organization_ids=organization_ids,
            portal_id=query.get("portal_id"),
            action=query.get("action"),
            actor_email=query.get("actor_email"),
            since=query.get("since"),
            until=query.get("until"),
        )

    @extend_schema(
        operation_id="list_audit_events",
        summary="List audit events, newest first",
        parameters=[AuditEventPageQueryInput, LINK_HEADER],
        responses=AuditEventOutput(many=True),
    )
    def list(self, request: Request) -> Response:
        query = query_params_validated(AuditEventPageQueryInput, request)
        return audit_event_page_response(request, self._events(query), query)

    @extend_schema(
        operation_id="export_audit_events",
        summary="Export audit events, oldest first (streamed NDJSON or CSV)",
        parameters=[AuditEventExportQueryInput],
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(AuditEventOutput, "One AuditEvent per line."),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, f"Columns: {', '.join(CSV_COLUMNS)}."),
        },
    )
    @action(detail=False, methods=["get"], renderer_classes=[JSONRenderer, NDJSONRenderer, CSVRenderer])
    def export(self, request: Request) -> StreamingHttpResponse:
        query = query_params_validated(AuditEventExportQueryInput, request)
        return audit_event_export_response(self._events(query), format=query["format"])
