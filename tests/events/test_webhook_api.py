"""/v1/webhooks (API.md "Webhooks"): every row of its table, as the org admin, a member and an outsider."""

import json
import logging
import uuid
from typing import Any

import pytest
from rest_framework.test import APIClient
from standardwebhooks import Webhook

from events.models import AuditEvent
from events.webhook_models import WebhookDelivery, WebhookEndpoint
from tests.conftest import bearer_client
from tests.jobs import run_jobs
from tests.webhook_receiver import Reply, WebhookReceiver

pytestmark = pytest.mark.django_db

QUEUE = ["webhooks"]
ENDPOINT_FIELDS = {
    "id", "organization_id", "portal_id", "url", "events", "description", "enabled", "disabled_reason",
    "created_at", "updated_at",
}  # fmt: skip
DELIVERY_FIELDS = {
    "id", "event_id", "event_type", "status", "attempts", "response_status", "last_attempt_at", "next_attempt_at",
    "created_at", "attempt_log",
}  # fmt: skip


def _create(client: APIClient, receiver: WebhookReceiver, path: str = "/hooks", **body: Any) -> dict[str, Any]:
    response = client.post("/v1/webhooks", {"url": receiver.url(path), **body}, format="json")
    assert response.status_code == 201, response.content
    created: dict[str, Any] = response.json()
    return created


def test_create_answers_the_endpoint_with_its_secret_once(owner_api, organization, receiver):
    body = _create(owner_api, receiver, events=["portal_user.*", "invitation.accepted"], description="CRM")

    assert set(body) == ENDPOINT_FIELDS | {"secret"}
    assert body["secret"].startswith("whsec_")
    assert (body["organization_id"], body["portal_id"], body["url"], body["enabled"], body["disabled_reason"]) == (
        str(organization.id),
        None,
        receiver.url(),
        True,
        None,
    )
    assert (body["events"], body["description"]) == (["portal_user.*", "invitation.accepted"], "CRM")
    listed = owner_api.get("/v1/webhooks").json()
    assert [set(item) for item in listed] == [ENDPOINT_FIELDS]
    assert "secret" not in owner_api.get(f"/v1/webhooks/{body['id']}").json()
    event = AuditEvent.objects.get(action="webhook_endpoint.created")
    assert (event.target_type, event.target_id, event.actor_email, event.via) == (
        "webhook_endpoint",
        body["id"],
        "owner@acme.test",
        "api",
    )


def test_events_default_to_everything(owner_api, receiver):
    assert _create(owner_api, receiver)["events"] == ["*"]


@pytest.mark.parametrize(
    ("body", "loc", "msg"),
    [
        ({"url": "http://hooks.example.com/in"}, ["body", "url"], "The URL must start with https://."),
        ({"url": "https://127.0.0.1/in"}, ["body", "url"], "127.0.0.1 is a loopback address."),
        ({"url": "https://10.0.0.8/in"}, ["body", "url"], "10.0.0.8 is a private address."),
        ({"url": "https://h.example.com/", "events": ["portal_user.**"]}, ["body", "events"], None),
        ({"url": "https://h.example.com/", "events": []}, ["body", "events"], None),
        (
            {"url": "https://h.example.com/", "organization_id": str(uuid.UUID(int=7))},
            ["body", "organization_id"],
            None,
        ),
    ],
)
def test_create_refuses_what_the_policy_does_not_allow(owner_api, settings, body, loc, msg):
    settings.WEBHOOK_ALLOW_HTTP = settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False

    response = owner_api.post("/v1/webhooks", body, format="json")

    assert response.status_code == 422, response.content
    [error] = response.json()["detail"]
    assert error["loc"][:2] == loc
    if msg is not None:
        assert error["msg"] == msg
    assert not WebhookEndpoint.objects.exists()


def test_an_endpoint_can_be_limited_to_a_portal_of_its_organization_only(owner_api, portal, outsider_portal, receiver):
    body = _create(owner_api, receiver, portal_id=str(portal.id))
    assert body["portal_id"] == str(portal.id)

    response = owner_api.post(
        "/v1/webhooks", {"url": receiver.url(), "portal_id": str(outsider_portal.id)}, format="json"
    )
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"loc": ["body", "portal_id"], "msg": "Not a portal of this organization.", "type": "value_error"}
    ]


def test_update_changes_what_is_given_and_records_the_changes(owner_api, receiver):
    created = _create(owner_api, receiver)

    response = owner_api.patch(
        f"/v1/webhooks/{created['id']}",
        {"url": receiver.url("/v2"), "events": ["invitation.*"], "description": "v2"},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert {key: response.json()[key] for key in ("url", "events", "description")} == {
        "url": receiver.url("/v2"),
        "events": ["invitation.*"],
        "description": "v2",
    }
    event = AuditEvent.objects.get(action="webhook_endpoint.updated")
    assert event.changes == {
        "url": [receiver.url(), receiver.url("/v2")],
        "events": [["*"], ["invitation.*"]],
        "description": ["", "v2"],
    }
    settings_refused = owner_api.patch(f"/v1/webhooks/{created['id']}", {"url": "ftp://x.example"}, format="json")
    assert settings_refused.status_code == 422
    assert settings_refused.json()["detail"][0]["loc"] == ["body", "url"]


def test_delete_removes_the_endpoint_and_records_it(owner_api, receiver):
    created = _create(owner_api, receiver)

    response = owner_api.delete(f"/v1/webhooks/{created['id']}")

    assert (response.status_code, response.json()) == (200, {})
    assert owner_api.get(f"/v1/webhooks/{created['id']}").status_code == 404
    assert AuditEvent.objects.get(action="webhook_endpoint.deleted").target_id == created["id"]


def test_rotate_gives_a_new_secret_and_the_old_one_still_verifies_for_now(owner_api, receiver):
    created = _create(owner_api, receiver)

    response = owner_api.post(f"/v1/webhooks/{created['id']}/rotate-secret")

    assert response.status_code == 200
    rotated = response.json()
    assert set(rotated) == ENDPOINT_FIELDS | {"secret"}
    assert rotated["secret"] != created["secret"]
    assert owner_api.post(f"/v1/webhooks/{created['id']}/test").status_code == 202
    run_jobs(queues=QUEUE)
    request = receiver.received()[-1]
    for secret in (rotated["secret"], created["secret"]):
        assert Webhook(secret).verify(request.body, request.headers)["type"] == "webhook.test"


def test_the_test_event_and_the_deliveries_list_with_every_attempt(owner_api, receiver):
    created = _create(owner_api, receiver, events=["invitation.accepted"])
    receiver.answer(Reply(status=502, body=b"upstream down"))

    assert owner_api.post(f"/v1/webhooks/{created['id']}/test").json() == {}
    run_jobs(queues=QUEUE)
    [delivery] = owner_api.get(f"/v1/webhooks/{created['id']}/deliveries").json()

    assert set(delivery) == DELIVERY_FIELDS
    assert (delivery["event_type"], delivery["status"], delivery["attempts"], delivery["response_status"]) == (
        "webhook.test",
        "pending",
        1,
        502,
    )
    assert delivery["next_attempt_at"] is not None
    [attempt] = delivery["attempt_log"]
    assert (attempt["response_status"], attempt["error"]) == (502, "HTTP 502 Bad Gateway")
    assert attempt["attempted_at"] == delivery["last_attempt_at"]

    response = owner_api.post(f"/v1/webhooks/{created['id']}/deliveries/{delivery['id']}/retry")
    assert (response.status_code, response.json()) == (202, {})
    run_jobs(queues=QUEUE)
    [after] = owner_api.get(f"/v1/webhooks/{created['id']}/deliveries?status=succeeded").json()
    assert (after["id"], after["attempts"], [a["response_status"] for a in after["attempt_log"]]) == (
        delivery["id"],
        2,
        [502, 200],
    )
    assert owner_api.get(f"/v1/webhooks/{created['id']}/deliveries?status=failed").json() == []
    bad = owner_api.get(f"/v1/webhooks/{created['id']}/deliveries?limit=0")
    assert (bad.status_code, bad.json()["detail"][0]["loc"]) == (422, ["query", "limit"])


def test_a_disabled_endpoint_cannot_be_tested_until_enabled(owner_api, receiver):
    created = _create(owner_api, receiver)
    owner_api.patch(f"/v1/webhooks/{created['id']}", {"enabled": False}, format="json")

    response = owner_api.post(f"/v1/webhooks/{created['id']}/test")

    assert (response.status_code, response.json()) == (409, {"detail": "The endpoint is disabled: enable it first."})
    owner_api.patch(f"/v1/webhooks/{created['id']}", {"enabled": True}, format="json")
    assert owner_api.post(f"/v1/webhooks/{created['id']}/test").status_code == 202


def test_a_member_and_an_outsider_get_nothing(owner_api, member, outsider, receiver):
    created = _create(owner_api, receiver)
    delivery_path = f"/v1/webhooks/{created['id']}/deliveries"
    for caller in (bearer_client(member), bearer_client(outsider)):
        for method, path in [
            ("get", f"/v1/webhooks/{created['id']}"),
            ("patch", f"/v1/webhooks/{created['id']}"),
            ("delete", f"/v1/webhooks/{created['id']}"),
            ("post", f"/v1/webhooks/{created['id']}/rotate-secret"),
            ("post", f"/v1/webhooks/{created['id']}/test"),
            ("get", delivery_path),
            ("post", f"{delivery_path}/{uuid.uuid4()}/retry"),
        ]:
            assert getattr(caller, method)(path, {}, format="json").status_code == 404, (method, path)
    assert bearer_client(member).get("/v1/webhooks").status_code == 403
    assert bearer_client(outsider).get("/v1/webhooks").json() == []
    assert APIClient(HTTP_HOST="localhost").get("/v1/webhooks").status_code == 401
    assert WebhookEndpoint.objects.get().url == created["url"]


def test_the_secret_is_never_logged_nor_recorded(owner_api, receiver, caplog):
    caplog.set_level(logging.DEBUG)
    receiver.answer(500)
    created = _create(owner_api, receiver)
    rotated = owner_api.post(f"/v1/webhooks/{created['id']}/rotate-secret").json()
    owner_api.post(f"/v1/webhooks/{created['id']}/test")
    run_jobs(queues=QUEUE)

    secrets = [created["secret"], rotated["secret"]]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    recorded = json.dumps(list(AuditEvent.objects.values()), default=str)
    for secret in secrets:
        assert secret not in logged and secret.removeprefix("whsec_") not in logged
        assert secret not in recorded


def test_list_and_detail_cost_the_same_queries_for_one_endpoint_and_for_ten(
    owner_api, receiver, django_assert_num_queries
):
    first = _create(owner_api, receiver)
    with django_assert_num_queries(2, info="the account with its admin organizations; the endpoints"):
        assert len(owner_api.get("/v1/webhooks").json()) == 1
    for n in range(9):
        _create(owner_api, receiver, f"/hooks/{n}")
    with django_assert_num_queries(2, info="the account with its admin organizations; the endpoints"):
        assert len(owner_api.get("/v1/webhooks").json()) == 10
    with django_assert_num_queries(2, info="the account with its admin organizations; the endpoint"):
        assert owner_api.get(f"/v1/webhooks/{first['id']}").json()["id"] == first["id"]


def test_the_deliveries_list_costs_the_same_queries_for_one_delivery_and_for_ten(
    owner_api, receiver, django_assert_num_queries
):
    created = _create(owner_api, receiver, events=["invitation.accepted"])
    path = f"/v1/webhooks/{created['id']}/deliveries"
    info = "the account with its admin organizations; the endpoint; its deliveries; their attempts"
    owner_api.post(f"/v1/webhooks/{created['id']}/test")
    run_jobs(queues=QUEUE)
    with django_assert_num_queries(4, info=info):
        assert len(owner_api.get(path).json()) == 1
    for _ in range(9):
        owner_api.post(f"/v1/webhooks/{created['id']}/test")
    run_jobs(queues=QUEUE)
    with django_assert_num_queries(4, info=info):
        deliveries = owner_api.get(path).json()
    assert len(deliveries) == 10 and all(len(d["attempt_log"]) == 1 for d in deliveries)
    assert WebhookDelivery.objects.filter(status="succeeded").count() == 10


def test_create_costs_a_fixed_number_of_queries(owner_api, receiver, django_assert_num_queries):
    _create(owner_api, receiver, "/first")
    info = (
        "the account with its admin organizations; the organization; SAVEPOINT; insert the endpoint; "
        "the webhook_endpoint.created event (chain head, insert, its deliveries: the first endpoint's), "
        "queue that delivery's job; RELEASE"
    )
    with django_assert_num_queries(9, info=info):
        _create(owner_api, receiver, "/second")
