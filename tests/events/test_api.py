"""GET /v1/audit-events, its export, and GET /v1/customer-portal/audit-events."""

import csv
import io
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Organization, User
from events.context import Actor, AuditContext, audit_context
from events.services import Pending, Target, record, record_many
from portals.models import Portal
from portals.services import portal_delete, portal_update
from tests.conftest import bearer_client

pytestmark = pytest.mark.django_db

NEXT = re.compile(r'^<(?P<url>[^>]+)>; rel="next"$')


def _fill(organization: Organization, count: int, *, action: str = "invitation.created", **fields: Any) -> list[str]:
    events = record_many(
        organization_id=organization.id,
        events=[Pending(action, Target("invitation", f"inv-{n}", f"p{n}@customer.test")) for n in range(count)],
        **fields,
    )
    return [str(event.id) for event in events]


def _ids(response: Any) -> list[str]:
    return [event["id"] for event in response.json()]


def _next(response: Any) -> str | None:
    link = response.headers.get("Link")
    if link is None:
        return None
    match = NEXT.match(link)
    assert match, link
    return match.group("url")


def test_it_lists_the_callers_events_newest_first_as_the_resource(owner_api: APIClient, portal: Portal) -> None:
    with audit_context(AuditContext(via="api", actor=Actor("user", "u1", "owner@acme.test"), request_id="r1")):
        portal_update(portal=portal, name="Renamed")

    response = owner_api.get("/v1/audit-events")

    assert response.status_code == 200
    updated, created = response.json()
    assert created["action"] == "portal.created"
    assert updated == {
        "id": updated["id"],
        "occurred_at": updated["occurred_at"],
        "action": "portal.updated",
        "organization_id": str(portal.organization_id),
        "portal_id": str(portal.id),
        "actor": {"type": "user", "id": "u1", "email": "owner@acme.test"},
        "via": "api",
        "ip_address": None,
        "user_agent": "",
        "target": {"type": "portal", "id": str(portal.id), "label": "acme"},
        "changes": {"name": ["Acme", "Renamed"]},
        "request_id": "r1",
    }
    assert updated["occurred_at"].endswith("Z")


def test_pages_follow_their_link_and_stay_put_while_new_events_arrive(
    owner_api: APIClient, organization: Organization
) -> None:
    ids = _fill(organization, 5)[::-1]  # newest first

    first = owner_api.get("/v1/audit-events?limit=2&action=invitation.created")
    _fill(organization, 3)  # newer than every page already handed out
    second = owner_api.get(_next(first))
    third = owner_api.get(_next(second))

    assert (_ids(first), _ids(second), _ids(third)) == (ids[:2], ids[2:4], ids[4:])
    assert "action=invitation.created" in _next(first)
    assert _next(third) is None


def test_a_page_costs_the_same_queries_for_one_event_and_many(
    owner_api: APIClient, organization: Organization, owner: User, django_assert_num_queries: Any
) -> None:
    _fill(organization, 1)
    owner_api.get("/v1/audit-events")  # warm: the first request of a client sets up the connection
    for count in (1, 30):
        with django_assert_num_queries(2, info="the account with its admin organizations, one page of events"):
            response = owner_api.get("/v1/audit-events?limit=20")
        assert len(response.json()) == min(count, 20)
        _fill(organization, 29)


def test_filters(owner_api: APIClient, organization: Organization, portal: Portal) -> None:
    with audit_context(AuditContext(via="api", actor=Actor("user", "u2", "Someone@Acme.test"))):
        mine = _fill(organization, 1, action="portal.feature.toggled", portal_id=portal.id)

    assert _ids(owner_api.get(f"/v1/audit-events?portal_id={portal.id}&action=portal.feature.toggled")) == mine
    assert _ids(owner_api.get("/v1/audit-events?actor_email=someone@acme.TEST")) == mine
    assert _ids(owner_api.get(f"/v1/audit-events?organization_id={organization.id}&action=portal.created")) != []
    later = (timezone.now() + timedelta(minutes=1)).isoformat()
    assert owner_api.get("/v1/audit-events", {"since": later}).json() == []
    assert len(owner_api.get("/v1/audit-events", {"until": later}).json()) == 2


@pytest.mark.parametrize(
    ("query", "loc"),
    [("limit=0", "limit"), ("limit=501", "limit"), ("cursor=nonsense", "cursor"), ("since=yesterday", "since"),
     ("portal_id=12", "portal_id")],
)  # fmt: skip
def test_bad_queries_are_a_422_on_their_parameter(owner_api: APIClient, owner: User, query: str, loc: str) -> None:
    response = owner_api.get(f"/v1/audit-events?{query}")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", loc]


def test_only_admins_see_an_organizations_events(
    owner_api: APIClient, organization: Organization, member: User, outsider: User, outsider_portal: Portal
) -> None:
    ours = set(_fill(organization, 2))

    assert bearer_client(member).get("/v1/audit-events").status_code == 403
    theirs = bearer_client(outsider).get("/v1/audit-events")
    assert [event["action"] for event in theirs.json()] == ["portal.created"]
    assert not ours & set(_ids(theirs))
    assert bearer_client(outsider).get(f"/v1/audit-events?organization_id={organization.id}").status_code == 404
    assert set(_ids(owner_api.get("/v1/audit-events"))) == ours
    assert owner_api.get(f"/v1/audit-events?portal_id={outsider_portal.id}").json() == []
    assert APIClient(HTTP_HOST="localhost").get("/v1/audit-events").status_code == 401


def test_a_deleted_portals_trail_stays_listable(owner_api: APIClient, portal: Portal) -> None:
    portal_id = portal.id
    portal_delete(portal=portal)

    response = owner_api.get(f"/v1/audit-events?portal_id={portal_id}")

    assert [event["action"] for event in response.json()] == ["portal.deleted", "portal.created"]


# The export -----------------------------------------------------------------------------------------


def _streamed(response: Any) -> str:
    assert response.streaming
    return b"".join(response.streaming_content).decode()


def test_the_export_streams_every_matching_event_oldest_first_as_ndjson(
    owner_api: APIClient, organization: Organization
) -> None:
    ids = _fill(organization, 7)

    response = owner_api.get("/v1/audit-events/export?action=invitation.created")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    lines = _streamed(response).splitlines()
    assert [json.loads(line)["id"] for line in lines] == ids
    assert json.loads(lines[0]) == owner_api.get("/v1/audit-events?limit=500").json()[-1]


def test_the_export_as_csv_flattens_the_resource_and_defuses_formulas(
    owner_api: APIClient, organization: Organization
) -> None:
    record(
        action="portal_user.invited",
        organization_id=organization.id,
        target=Target("portal_user", "pu-1", '=HYPERLINK("http://evil")'),
        changes={"role": [None, "member"]},
    )

    response = owner_api.get("/v1/audit-events/export?format=csv", HTTP_ACCEPT="text/csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    header, row = list(csv.reader(io.StringIO(_streamed(response))))
    values = dict(zip(header, row, strict=True))
    assert (values["action"], values["target_type"], values["target_label"]) == (
        "portal_user.invited",
        "portal_user",
        '\'=HYPERLINK("http://evil")',
    )
    assert json.loads(values["changes"]) == {"role": [None, "member"]}


def test_the_export_answers_an_ndjson_accept_header(owner_api: APIClient, organization: Organization) -> None:
    _fill(organization, 1)
    response = owner_api.get("/v1/audit-events/export", HTTP_ACCEPT="application/x-ndjson")
    assert response.status_code == 200 and len(_streamed(response).splitlines()) == 1


def test_the_export_is_only_the_callers(outsider: User, organization: Organization) -> None:
    _fill(organization, 3)
    assert _streamed(bearer_client(outsider).get("/v1/audit-events/export")) == ""
    assert bearer_client(outsider).get(f"/v1/audit-events/export?organization_id={organization.id}").status_code == 404


# The routed portal's trail -------------------------------------------------------------------------


def test_the_customer_portal_list_is_the_routed_portals(
    owner_on_portal: APIClient, owner: User, portal: Portal, organization: Organization, django_assert_num_queries: Any
) -> None:
    other = _fill(organization, 2)  # the organization's, about no portal
    mine = _fill(organization, 2, portal_id=portal.id)[::-1]

    owner_on_portal.get("/v1/customer-portal/audit-events")
    with django_assert_num_queries(2, info="the account with its admin organizations, one page of events"):
        response = owner_on_portal.get("/v1/customer-portal/audit-events?limit=2")

    assert _ids(response) == mine
    assert not set(other) & set(_ids(owner_on_portal.get("/v1/customer-portal/audit-events")))
    following = owner_on_portal.get(_next(response))
    assert [event["action"] for event in following.json()] == ["portal.created"]
    by_header = bearer_client(owner).get("/v1/customer-portal/audit-events", HTTP_X_PORTAL_ID=str(portal.id))
    assert len(by_header.json()) == 3


@pytest.mark.parametrize("count", [1, 25])
def test_the_export_costs_the_same_queries_for_few_events_and_many(
    owner_api: APIClient, organization: Organization, owner: User, count: int, django_assert_num_queries: Any
) -> None:
    _fill(organization, count)
    owner_api.get("/v1/audit-events?limit=1")  # warm: the first request of a client sets up the connection
    with django_assert_num_queries(2, info="the account with its admin organizations, the events' cursor"):
        body = _streamed(owner_api.get("/v1/audit-events/export"))
    assert len(body.splitlines()) == count
