"""Webhook deliveries end to end: an event recorded in a transaction becomes one job per endpoint that wants
it; the job signs and POSTs it to a real HTTP server on loopback, which verifies it with the
`standardwebhooks` package as a customer would; failures are tried again, then the endpoint is disabled."""

import json
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook

from accounts.models import Organization
from events.models import AuditEvent
from events.services import Pending, Target, record, record_many
from events.webhook_models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from events.webhook_queue import DELIVER_TASK, webhook_jobs_queue
from events.webhook_services import (
    webhook_delivery_retry,
    webhook_endpoint_create,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_test,
    webhook_endpoint_update,
)
from portalsite.jobs import app
from tests.conftest import make_portal
from tests.jobs import queued_jobs, run_jobs
from tests.webhook_receiver import ReceivedRequest, Reply, WebhookReceiver

pytestmark = pytest.mark.django_db

PORTAL_A = uuid.UUID("00000000-0000-4000-8000-0000000000a1")
PORTAL_B = uuid.UUID("00000000-0000-4000-8000-0000000000a2")
QUEUE = ["webhooks"]


def _endpoint(organization: Organization, receiver: WebhookReceiver, path: str, **fields: Any) -> WebhookEndpoint:
    return webhook_endpoint_create(organization=organization, url=receiver.url(path), **fields)


def _event(organization: Organization, action: str = "portal_user.invited", portal_id: uuid.UUID | None = PORTAL_A):
    with transaction.atomic():
        return record(
            action=action,
            organization_id=organization.id,
            portal_id=portal_id,
            target=Target(type="portal_user", id="pu-1", label="pat@customer.test"),
        )


def _settled(receiver: WebhookReceiver) -> None:
    """Deliver what setting up queued (the endpoints' own `created` events) and forget it."""
    run_jobs(queues=QUEUE)
    receiver.clear()


def _verified(request: ReceivedRequest, endpoint: WebhookEndpoint) -> dict[str, Any]:
    payload: dict[str, Any] = Webhook(endpoint.secret).verify(request.body, request.headers)
    return payload


def test_an_event_goes_signed_to_every_endpoint_that_wants_it_and_no_other(
    organization: Organization, outsider_organization: Organization, receiver: WebhookReceiver
):
    every = _endpoint(organization, receiver, "/every")
    people = _endpoint(organization, receiver, "/people", events=["portal_user.*"])
    accepted = _endpoint(organization, receiver, "/accepted", events=["invitation.accepted"])
    portal_a = _endpoint(organization, receiver, "/portal-a", portal_id=PORTAL_A)
    _endpoint(organization, receiver, "/portal-b", portal_id=PORTAL_B)
    _endpoint(outsider_organization, receiver, "/outsider")
    _settled(receiver)

    event = _event(organization)
    runs = run_jobs(queues=QUEUE)

    assert [run.status for run in runs] == ["succeeded"] * 3
    by_path = {request.path: request for request in receiver.received()}
    assert set(by_path) == {"/every", "/people", "/portal-a"}
    for path, endpoint in (("/every", every), ("/people", people), ("/portal-a", portal_a)):
        payload = _verified(by_path[path], endpoint)
        assert by_path[path].headers["webhook-id"] == str(event.id)
        assert payload["id"] == str(event.id) and payload["type"] == "portal_user.invited"
        assert payload["data"]["target"] == {"type": "portal_user", "id": "pu-1", "label": "pat@customer.test"}
        assert payload["data"]["organization_id"] == str(organization.id)
        assert payload["timestamp"] == payload["data"]["occurred_at"]
    assert not WebhookDelivery.objects.filter(endpoint=accepted).exists()

    _event(organization, action="invitation.accepted")
    run_jobs(queues=QUEUE)
    assert sorted(request.path for request in receiver.received()[3:]) == ["/accepted", "/every", "/portal-a"]


def test_an_organization_wide_event_goes_only_to_endpoints_of_every_portal(
    organization: Organization, receiver: WebhookReceiver
):
    _endpoint(organization, receiver, "/every")
    _endpoint(organization, receiver, "/portal-a", portal_id=PORTAL_A)
    _settled(receiver)

    _event(organization, action="webhook_endpoint.created", portal_id=None)
    run_jobs(queues=QUEUE)

    assert [request.path for request in receiver.received()] == ["/every"]


def test_an_event_that_rolls_back_queues_nothing(organization: Organization, receiver: WebhookReceiver):
    _endpoint(organization, receiver, "/every")
    _settled(receiver)
    deliveries = WebhookDelivery.objects.count()

    with pytest.raises(RuntimeError), transaction.atomic():
        _event(organization)
        raise RuntimeError("the change fails after its event was recorded")

    assert WebhookDelivery.objects.count() == deliveries
    assert queued_jobs(task_name=DELIVER_TASK) == []


def test_a_bulk_write_queues_its_deliveries_in_a_fixed_number_of_queries(
    organization: Organization, receiver: WebhookReceiver, django_assert_num_queries: Any
):
    _endpoint(organization, receiver, "/every")
    _endpoint(organization, receiver, "/people", events=["portal_user.*"])
    _settled(receiver)
    many = [Pending(action="portal_user.invited", target=Target(type="portal_user", id=str(n))) for n in range(50)]

    with transaction.atomic():
        with django_assert_num_queries(4, info="chain head; insert events; insert deliveries; queue their jobs"):
            events = record_many(organization_id=organization.id, portal_id=PORTAL_A, events=many)
        with django_assert_num_queries(3, info="chain head; insert events; find no endpoint"):
            record_many(organization_id=uuid.uuid4(), portal_id=PORTAL_A, events=many)

    assert WebhookDelivery.objects.filter(event_id__in=[event.id for event in events]).count() == 100
    assert len(queued_jobs(task_name=DELIVER_TASK)) == 100


def test_a_failed_delivery_is_tried_again_on_the_schedule_until_it_succeeds(
    organization: Organization, receiver: WebhookReceiver
):
    endpoint = _endpoint(organization, receiver, "/every", events=["portal_user.*"])
    _settled(receiver)
    receiver.answer(500, 503)

    event = _event(organization)
    [first] = run_jobs(queues=QUEUE)
    delivery = WebhookDelivery.objects.get(event_id=event.id)
    assert (first.status, delivery.status, delivery.attempts, delivery.response_status) == ("retry", "pending", 1, 500)
    assert delivery.next_attempt_at is not None and delivery.last_attempt_at is not None
    assert delivery.next_attempt_at - delivery.last_attempt_at == timedelta(seconds=5)

    assert run_jobs(queues=QUEUE) == []  # not due for 5 s
    [second] = run_jobs(queues=QUEUE, advance=timedelta(seconds=6))
    delivery.refresh_from_db()
    assert (second.status, delivery.attempts, delivery.response_status) == ("retry", 2, 503)
    assert delivery.next_attempt_at - delivery.last_attempt_at == timedelta(seconds=300)
    [third] = run_jobs(queues=QUEUE, advance=timedelta(seconds=301))

    delivery.refresh_from_db()
    assert (third.status, delivery.status, delivery.attempts, delivery.response_status) == (
        "succeeded",
        "succeeded",
        3,
        200,
    )
    assert delivery.next_attempt_at is None
    assert [attempt.response_status for attempt in delivery.attempt_log.order_by("attempted_at")] == [500, 503, 200]
    requests = receiver.received()
    assert [request.reply_status for request in requests] == [500, 503, 200]
    assert {request.headers["webhook-id"] for request in requests} == {str(event.id)}
    assert {_verified(request, endpoint)["id"] for request in requests} == {str(event.id)}
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None  # the success ended its run of failures


def test_a_delivery_that_succeeded_is_not_sent_again_by_a_second_job(
    organization: Organization, receiver: WebhookReceiver
):
    _endpoint(organization, receiver, "/every")
    _settled(receiver)
    event = _event(organization)
    run_jobs(queues=QUEUE)
    delivery = WebhookDelivery.objects.get(event_id=event.id)

    webhook_jobs_queue(delivery_ids=[delivery.id])  # as when a job is run again after its worker died
    [run] = run_jobs(queues=QUEUE)

    assert run.status == "succeeded"
    assert len(receiver.received()) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 1)


def test_after_the_last_try_the_delivery_is_failed_and_a_manual_retry_is_one_more_try(
    settings, organization: Organization, receiver: WebhookReceiver
):
    settings.WEBHOOK_RETRY_SCHEDULE = [1]
    _endpoint(organization, receiver, "/every")
    _settled(receiver)
    receiver.default = Reply(status=500)

    event = _event(organization)
    runs = run_jobs(queues=QUEUE) + run_jobs(queues=QUEUE, advance=timedelta(seconds=2))
    delivery = WebhookDelivery.objects.get(event_id=event.id)
    assert [run.status for run in runs] == ["retry", "succeeded"]  # the job ended: the delivery failed
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 2, None)

    receiver.default = Reply(status=204)
    webhook_delivery_retry(delivery=delivery)
    [manual] = run_jobs(queues=QUEUE)

    delivery.refresh_from_db()
    assert (manual.task_name, delivery.status, delivery.attempts, delivery.response_status) == (
        "deliver_webhook_once",
        "succeeded",
        3,
        204,
    )
    assert [request.reply_status for request in receiver.received()] == [500, 500, 204]


def test_an_endpoint_failing_for_the_disable_period_is_disabled_with_an_event(
    settings, organization: Organization, receiver: WebhookReceiver
):
    settings.WEBHOOK_DISABLE_AFTER = timedelta(seconds=1)
    failing = _endpoint(organization, receiver, "/failing", events=["portal_user.*"])
    watcher = _endpoint(organization, receiver, "/watcher", events=["webhook_endpoint.disabled"])
    _settled(receiver)
    receiver.default = Reply(status=500)

    first = _event(organization)
    run_jobs(queues=QUEUE)
    failing.refresh_from_db()
    assert failing.enabled and failing.failing_since is not None
    time.sleep(1.1)  # every try fails for longer than WEBHOOK_DISABLE_AFTER
    receiver.default = Reply(status=200)
    receiver.answer(500)
    second = _event(organization)
    run_jobs(queues=QUEUE)

    failing.refresh_from_db()
    assert not failing.enabled
    assert failing.disabled_reason.startswith("Every delivery failed from ")
    disabled = AuditEvent.objects.get(action="webhook_endpoint.disabled")
    assert (disabled.actor_type, disabled.target_id, disabled.changes) == (
        "system",
        str(failing.id),
        {"enabled": [True, False]},
    )
    assert WebhookDelivery.objects.get(event_id=second.id).status == "failed"
    # The first event's retry finds the endpoint disabled: it is failed without another try.
    run_jobs(queues=QUEUE, advance=timedelta(seconds=10))
    assert WebhookDelivery.objects.get(event_id=first.id).status == "failed"
    paths = [request.path for request in receiver.received()]
    assert paths == ["/failing", "/failing", "/watcher"]
    assert _verified(receiver.received("/watcher")[0], watcher)["type"] == "webhook_endpoint.disabled"

    _event(organization)
    assert not WebhookDelivery.objects.filter(endpoint=failing, status="pending").exists()

    webhook_endpoint_update(endpoint=failing, enabled=True)
    failing.refresh_from_db()
    assert (failing.enabled, failing.disabled_reason, failing.failing_since) == (True, "", None)


def test_during_a_rotation_deliveries_carry_both_signatures_for_24_hours(
    organization: Organization, receiver: WebhookReceiver
):
    endpoint = _endpoint(organization, receiver, "/every", events=["portal_user.*"])
    old_secret = endpoint.secret
    rotated = webhook_endpoint_rotate_secret(endpoint=endpoint)
    _settled(receiver)

    _event(organization)
    run_jobs(queues=QUEUE)

    [request] = receiver.received()
    assert rotated.secret != old_secret
    assert Webhook(rotated.secret).verify(request.body, request.headers)["type"] == "portal_user.invited"
    assert Webhook(old_secret).verify(request.body, request.headers)["type"] == "portal_user.invited"
    now = timezone.now()
    assert rotated.signing_secrets(now=now + timedelta(hours=23)) == [rotated.secret, old_secret]
    assert rotated.signing_secrets(now=now + timedelta(hours=24, seconds=1)) == [rotated.secret]
    event = AuditEvent.objects.filter(action="webhook_endpoint.updated").get()
    assert list(event.changes) == ["previous_key_expires_at"]
    assert old_secret not in json.dumps(event.changes) and rotated.secret not in json.dumps(event.changes)


def test_a_test_event_goes_to_that_endpoint_only_and_is_not_in_the_audit_log(
    organization: Organization, receiver: WebhookReceiver
):
    endpoint = _endpoint(organization, receiver, "/tested")
    _endpoint(organization, receiver, "/other")
    _settled(receiver)

    delivery = webhook_endpoint_test(endpoint=endpoint)
    run_jobs(queues=QUEUE)

    [request] = receiver.received()
    payload = _verified(request, endpoint)
    assert (request.path, payload["type"], payload["id"]) == ("/tested", "webhook.test", str(delivery.event_id))
    assert payload["data"]["target"] == {"type": "webhook_endpoint", "id": str(endpoint.id), "label": endpoint.url}
    assert not AuditEvent.objects.filter(action="webhook.test").exists()


def test_the_url_policy_is_applied_again_at_delivery(settings, organization: Organization, receiver: WebhookReceiver):
    _endpoint(organization, receiver, "/every")
    _settled(receiver)
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False

    event = _event(organization)
    run_jobs(queues=QUEUE)

    assert receiver.received() == []
    delivery = WebhookDelivery.objects.get(event_id=event.id)
    [attempt] = delivery.attempt_log.all()
    assert (delivery.status, attempt.response_status) == ("pending", None)
    assert attempt.error == "Not sent: 127.0.0.1 is a loopback address."


def test_a_bulk_invite_through_the_api_is_delivered_one_event_per_person_to_its_portals_endpoints(
    owner, owner_api, portal, receiver: WebhookReceiver
):
    other = make_portal(owner, name="Other portal", slug="other-portal")
    organization = portal.organization
    mine = _endpoint(organization, receiver, "/acme", events=["portal_user.*"], portal_id=portal.id)
    _endpoint(organization, receiver, "/other", events=["portal_user.*"], portal_id=other.id)
    _settled(receiver)
    emails = [f"person{n}@customer.test" for n in range(5)]

    response = owner_api.post(
        f"/v1/portal/{portal.id}/users", {"users": [{"email": email} for email in emails]}, format="json"
    )
    assert response.status_code == 201, response.content
    run_jobs(queues=QUEUE)

    requests = receiver.received()
    assert {request.path for request in requests} == {"/acme"}
    payloads = [_verified(request, mine) for request in requests]
    assert sorted(payload["data"]["target"]["label"] for payload in payloads) == emails
    assert {(payload["type"], payload["data"]["portal_id"]) for payload in payloads} == {
        ("portal_user.invited", str(portal.id))
    }
    assert len({payload["id"] for payload in payloads}) == 5


def test_ended_deliveries_past_the_retention_are_pruned_with_their_tries(
    settings, organization: Organization, receiver: WebhookReceiver
):
    settings.WEBHOOK_DELIVERY_RETENTION_DAYS = 30
    _endpoint(organization, receiver, "/every", events=["portal_user.*"])
    _settled(receiver)
    old, recent, waiting = _event(organization), _event(organization), _event(organization)
    receiver.answer(200, 200, 500)
    run_jobs(queues=QUEUE)
    month_ago = timezone.now() - timedelta(days=30, minutes=1)
    WebhookDelivery.objects.filter(event_id__in=[old.id, waiting.id]).update(created_at=month_ago)
    assert WebhookDelivery.objects.get(event_id=waiting.id).status == "pending"  # its retry is due in 5 s

    app.tasks["prune_webhook_deliveries"].defer(timestamp=0)
    [run] = run_jobs(queues=["maintenance"])

    assert run.status == "succeeded"
    left = set(
        WebhookDelivery.objects.filter(event_id__in=[old.id, recent.id, waiting.id]).values_list("event_id", flat=True)
    )
    assert left == {recent.id, waiting.id}
    assert not WebhookAttempt.objects.filter(delivery__event_id=old.id).exists()


def test_a_manual_retry_of_a_waiting_delivery_that_fails_leaves_its_schedule_in_place(
    organization: Organization, receiver: WebhookReceiver
):
    _endpoint(organization, receiver, "/every", events=["portal_user.*"])
    _settled(receiver)
    receiver.answer(500, 500)
    event = _event(organization)
    run_jobs(queues=QUEUE)
    delivery = WebhookDelivery.objects.get(event_id=event.id)
    scheduled = delivery.next_attempt_at

    webhook_delivery_retry(delivery=delivery)
    [manual] = run_jobs(queues=QUEUE)
    delivery.refresh_from_db()
    assert (manual.task_name, delivery.status, delivery.attempts, delivery.next_attempt_at) == (
        "deliver_webhook_once",
        "pending",
        2,
        scheduled,
    )
    [automatic] = run_jobs(queues=QUEUE, advance=timedelta(seconds=6))

    delivery.refresh_from_db()
    assert (automatic.task_name, delivery.status, delivery.attempts) == ("deliver_webhook", "succeeded", 3)
    assert [request.reply_status for request in receiver.received()] == [500, 500, 200]
