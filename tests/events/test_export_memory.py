"""The export holds a chunk of rows at a time, however many it streams (a server-side cursor)."""

import json
import os
import time
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import Organization
from events.models import AuditEvent

pytestmark = pytest.mark.django_db

EVENTS = 100_000


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _insert(organization: Organization, count: int) -> None:
    """`count` events of `organization` in one statement (the chain is not what this test is about)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {AuditEvent._meta.db_table}
                (id, occurred_at, action, organization_id, actor_type, actor_id, actor_email, via, user_agent,
                 target_type, target_id, target_label, changes, request_id, seq, prev_hash, hash)
            SELECT gen_random_uuid(), now() - make_interval(secs => %s - n), 'portal_user.invited', %s, 'user', '',
                   'owner@acme.test', 'api', 'Mozilla/5.0 (a browser of ordinary length)', 'portal_user',
                   gen_random_uuid()::text, 'person' || n || '@customer.test', '{{"role": [null, "member"]}}', '',
                   n, repeat('0', 64), repeat('1', 64)
            FROM generate_series(1, %s) AS n""",  # noqa: S608
            [count, organization.id, count],
        )


def test_exporting_100000_events_keeps_memory_flat(
    owner_api: APIClient, organization: Organization, settings: Any
) -> None:
    _insert(organization, EVENTS)
    owner_api.get("/v1/audit-events?limit=1")  # the first request's one-time costs, before the baseline
    baseline = _rss_bytes()
    response = owner_api.get("/v1/audit-events/export")
    assert response.status_code == 200

    started = time.monotonic()
    lines, samples, size = 0, [baseline], 0
    for chunk in response.streaming_content:
        lines += chunk.count(b"\n")
        size += len(chunk)
        if lines in (1_000, 50_000, 99_000):
            samples.append(_rss_bytes())
        if lines == 1:
            first = json.loads(chunk)
    elapsed = time.monotonic() - started

    assert lines == EVENTS
    assert first["target"]["label"] == "person1@customer.test"  # oldest first
    growth = max(samples) - samples[0]
    # All of it at once would be the whole body (about 45 MB here) and 100,000 model instances besides.
    print(f"export: {EVENTS} events, {size / 1e6:.1f} MB in {elapsed:.1f} s; RSS growth {growth / 1e6:.1f} MB")
    assert growth < 20_000_000, f"RSS grew {growth / 1e6:.1f} MB while streaming ({size / 1e6:.1f} MB sent)"
