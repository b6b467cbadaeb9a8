"""An event's resource (API.md's `AuditEvent`) and its hash: one representation, used by the API, the export
and the chain alike, so what is verified is exactly what is shown."""

import hashlib
import json
from datetime import datetime
from typing import Any

from events.models import AuditEvent


def timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, as DRF renders times."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def audit_event_data(event: AuditEvent) -> dict[str, Any]:
    """The `AuditEvent` resource: JSON-ready."""
    return {
        "id": str(event.id),
        "occurred_at": timestamp(event.occurred_at),
        "action": event.action,
        "organization_id": str(event.organization_id),
        "portal_id": str(event.portal_id) if event.portal_id else None,
        "actor": {"type": event.actor_type, "id": event.actor_id or None, "email": event.actor_email or None},
        "via": event.via,
        "ip_address": event.ip_address,
        "user_agent": event.user_agent,
        "target": {"type": event.target_type, "id": event.target_id, "label": event.target_label},
        "changes": event.changes,
        "request_id": event.request_id,
    }


def event_hash(event: AuditEvent) -> str:
    """SHA-256 of the canonical JSON (sorted keys, no spaces) of the resource, its `seq` and `prev_hash`."""
    payload = {**audit_event_data(event), "seq": event.seq, "prev_hash": event.prev_hash}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
