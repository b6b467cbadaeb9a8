"""Webhooks through a real `manage.py worker` process, to a real receiver on loopback (marked slow: a site each).

An endpoint of the demo organization, an invitation made the way the service makes it, and a worker that
delivers the `portal_user.invited` event: signed so that the `standardwebhooks` verifier accepts it with
the endpoint's secret. The receiver holds its answer while the worker is told to stop (SIGTERM): the
worker finishes the delivery it holds, exits 0, and the delivery is `succeeded`, sent once.
"""

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from tests.live import INVITE_TO_DEMO, LiveSite, live_site
from tests.webhook_receiver import Reply, WebhookReceiver

pytestmark = pytest.mark.slow

_ENDPOINT = (
    "import json, sys\n"
    "from events.webhook_services import webhook_endpoint_create\n"
    "from portals.selectors import portal_get_by_ref\n"
    "organization = portal_get_by_ref(ref='demo').organization\n"
    "endpoint = webhook_endpoint_create(organization=organization, url=sys.argv[1], events=['portal_user.*'])\n"
    "print(json.dumps(endpoint.secret))\n"
)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


@pytest.fixture
def site(tmp_path: Path) -> Iterator[LiveSite]:
    with live_site(tmp_path, WEBHOOK_ALLOW_HTTP="true", WEBHOOK_ALLOW_PRIVATE_NETWORKS="true") as live:
        yield live


def test_a_worker_delivers_a_signed_event_and_on_sigterm_finishes_the_delivery_it_holds(
    site: LiveSite, receiver: WebhookReceiver
):
    secret = site.python(_ENDPOINT, receiver.url())
    site.python(INVITE_TO_DEMO, "webhook-guest@example.com")
    receiver.answer(Reply(status=204, delay=3))  # the answer comes 3 s after the delivery arrived

    worker = site.start("worker", "--concurrency", "2", log="worker")
    try:
        [request] = receiver.wait_for(1, timeout=60)
        worker.signal(signal.SIGTERM)
        worker.wait_for_log("Stop requested")
        assert worker.popen.poll() is None  # still there: it waits for the delivery it holds
        assert worker.wait(timeout=60) == 0
    finally:
        worker.stop()

    payload = Webhook(secret).verify(request.body, request.headers)
    assert (payload["type"], payload["data"]["target"]["label"]) == ("portal_user.invited", "webhook-guest@example.com")
    assert len(receiver.received()) == 1
    assert site.sql(
        "SELECT d.status, d.attempts, d.response_status FROM events_webhookdelivery d WHERE d.event_id = %s",
        [payload["id"]],
    ) == [("succeeded", 1, 204)]
