"""Webhooks on the wire (events.webhooks): the URL policy, Standard Webhooks signatures as a receiver
verifies them, and one POST against a real HTTP server on loopback (tests/webhook_receiver.py)."""

import base64
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from events.webhooks import (
    RESPONSE_BODY_LIMIT,
    WebhookAttemptResult,
    WebhookUrlRefused,
    webhook_body,
    webhook_secret_new,
    webhook_send,
    webhook_target,
    webhook_url_validate,
)
from portalsite.errors import ApplicationError
from tests.dns_server import DnsZone
from tests.webhook_receiver import Reply, WebhookReceiver

PUBLIC_ADDRESS = "93.184.216.34"
EVENT_ID = "0b1c2d3e-0000-4000-8000-000000000001"


def _body() -> str:
    return webhook_body(
        event_id=EVENT_ID,
        event_type="portal.created",
        timestamp="2026-12-01T12:00:00Z",
        data={"id": EVENT_ID, "action": "portal.created", "target": {"type": "portal", "id": "p1", "label": "Acme"}},
    )


# The URL policy -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/in", "must start with https://"),
        ("ftp://hooks.example.com/in", "must start with https://"),
        ("https:///in", "has no host"),
        ("https://user:pw@hooks.example.com/in", "must not contain a user name or password"),
        ("https://127.0.0.1/in", "127.0.0.1 is a loopback address"),
        ("https://[::1]/in", "::1 is a loopback address"),
        ("https://[::ffff:127.0.0.1]/in", "127.0.0.1 is a loopback address"),
        ("https://10.1.2.3/in", "10.1.2.3 is a private address"),
        ("https://192.168.0.10/in", "192.168.0.10 is a private address"),
        ("https://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address"),
        ("https://[fe80::1]/in", "fe80::1 is a link-local address"),
        ("https://224.0.0.251/in", "224.0.0.251 is a multicast address"),
        ("https://0.0.0.0/in", "0.0.0.0 is an unspecified address"),
        ("https://100.64.0.1/in", "100.64.0.1 is not a public address"),
        # Ones that Python before 3.11.10 (CVE-2024-4032) calls global:
        ("https://[2002:7f00:1::]/in", "2002:7f00:1:: is a loopback address"),  # 6to4 around 127.0.0.1
        ("https://[fec0::1]/in", "fec0::1 is a site-local address"),
        ("https://192.0.0.8/in", "192.0.0.8 is a reserved address"),
    ],
)
def test_it_refuses_urls_outside_the_policy(settings, url, reason):
    settings.WEBHOOK_ALLOW_HTTP = settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False

    with pytest.raises(WebhookUrlRefused) as refused:
        webhook_target(url)

    assert reason in str(refused.value)


def test_a_refused_url_is_a_422_on_the_field(settings):
    settings.WEBHOOK_ALLOW_HTTP = False

    with pytest.raises(ApplicationError) as refused:
        webhook_url_validate("http://hooks.example.com/in")

    [error] = refused.value.field_errors
    assert refused.value.status == 422 and error.loc == ("url",)
    assert error.msg == "The URL must start with https://."


def test_every_address_of_a_host_must_be_public(settings, dns_zone: DnsZone):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    dns_zone.hosts["hooks.customer.test"] = [PUBLIC_ADDRESS]
    dns_zone.hosts["sneaky.customer.test"] = [PUBLIC_ADDRESS, "10.0.0.7"]
    dns_zone.hosts["v6.customer.test"] = ["2606:4700::1111", "fd00::1"]

    target = webhook_target("https://hooks.customer.test/in?x=1")

    assert (str(target.address), target.port, target.path, target.host_header) == (
        PUBLIC_ADDRESS,
        443,
        "/in?x=1",
        "hooks.customer.test",
    )
    with pytest.raises(WebhookUrlRefused, match=r"resolves to 10\.0\.0\.7, a private address"):
        webhook_target("https://sneaky.customer.test/in")
    with pytest.raises(WebhookUrlRefused, match=r"resolves to fd00::1, a private address"):
        webhook_target("https://v6.customer.test/in")


def test_a_host_without_an_address_is_refused(settings, dns_zone: DnsZone):
    with pytest.raises(WebhookUrlRefused, match=r"The host nowhere\.customer\.test has no address"):
        webhook_target("https://nowhere.customer.test/in")


def test_the_development_switches_allow_plain_http_on_loopback(settings):
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True

    target = webhook_target("http://127.0.0.1:8025/hooks")

    assert (target.scheme, str(target.address), target.port, target.host_header) == (
        "http",
        "127.0.0.1",
        8025,
        "127.0.0.1:8025",
    )
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    with pytest.raises(WebhookUrlRefused, match="loopback"):
        webhook_target("http://127.0.0.1:8025/hooks")


# Secrets and signatures -----------------------------------------------------------------------


def test_a_secret_is_whsec_and_256_random_bits():
    first, second = webhook_secret_new(), webhook_secret_new()

    assert first.startswith("whsec_") and first != second
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32


def test_a_receiver_verifies_a_delivery_with_the_standardwebhooks_package(receiver: WebhookReceiver):
    secret = webhook_secret_new()

    result = webhook_send(url=receiver.url(), event_id=EVENT_ID, body=_body(), signing_secrets=[secret])

    assert (result.succeeded, result.status_code, result.error) == (True, 200, "")
    [request] = receiver.received()
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == EVENT_ID
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 5
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload == {
        "id": EVENT_ID,
        "type": "portal.created",
        "timestamp": "2026-12-01T12:00:00Z",
        "data": json.loads(_body())["data"],
    }
    with pytest.raises(WebhookVerificationError):
        Webhook(webhook_secret_new()).verify(request.body, request.headers)


def test_during_a_rotation_both_secrets_sign(receiver: WebhookReceiver):
    new, old = webhook_secret_new(), webhook_secret_new()

    webhook_send(url=receiver.url(), event_id=EVENT_ID, body=_body(), signing_secrets=[new, old])

    [request] = receiver.received()
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(new).verify(request.body, request.headers)["id"] == EVENT_ID
    assert Webhook(old).verify(request.body, request.headers)["id"] == EVENT_ID


def test_a_receiver_refuses_a_replayed_old_delivery(receiver: WebhookReceiver):
    secret = webhook_secret_new()
    an_hour_ago = datetime.now(tz=UTC) - timedelta(hours=1)

    webhook_send(url=receiver.url(), event_id=EVENT_ID, body=_body(), signing_secrets=[secret], at=an_hour_ago)

    [request] = receiver.received()
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(request.body, request.headers)


# One POST -------------------------------------------------------------------------------------


def _send(url: str) -> WebhookAttemptResult:
    return webhook_send(url=url, event_id=EVENT_ID, body=_body(), signing_secrets=[webhook_secret_new()])


def test_an_error_status_is_a_failure_with_a_short_excerpt_of_the_answer(receiver: WebhookReceiver):
    receiver.answer(Reply(status=503, body=b"x" * 100_000))

    result = _send(receiver.url())

    assert (result.succeeded, result.status_code, result.error) == (False, 503, "HTTP 503 Service Unavailable")
    assert result.response_excerpt == "x" * RESPONSE_BODY_LIMIT


def test_redirects_are_not_followed(receiver: WebhookReceiver):
    receiver.redirect_to(receiver.url("/elsewhere"))

    result = _send(receiver.url())

    assert (result.succeeded, result.status_code) == (False, 307)
    assert result.error == f"HTTP 307: redirects are not followed (Location: {receiver.url('/elsewhere')})."
    assert [request.path for request in receiver.received()] == ["/hooks"]


def test_an_endpoint_slower_than_the_timeout_fails_at_the_timeout(settings, receiver: WebhookReceiver):
    settings.WEBHOOK_TIMEOUT = 0.3
    receiver.answer(Reply(status=200, delay=3))

    started = time.monotonic()
    result = _send(receiver.url())

    assert (result.succeeded, result.status_code, result.error) == (
        False,
        None,
        "No answer within WEBHOOK_TIMEOUT (0.3 s).",
    )
    assert time.monotonic() - started < 2


def test_an_endpoint_that_is_down_is_a_failure_without_status(receiver: WebhookReceiver):
    url = receiver.url()
    receiver.stop()

    result = _send(url)

    assert (result.succeeded, result.status_code) == (False, None)
    assert result.error.startswith(f"Could not reach 127.0.0.1:{url.split(':')[2].split('/')[0]} (127.0.0.1): ")


def test_the_policy_is_checked_again_when_sending(settings, receiver: WebhookReceiver, dns_zone: DnsZone):
    """A host that resolved to a public address when registered and points at loopback now is not called."""
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    dns_zone.hosts["hooks.customer.test"] = [PUBLIC_ADDRESS]
    url = f"http://hooks.customer.test:{receiver.port}/hooks"
    webhook_url_validate(url)
    dns_zone.hosts["hooks.customer.test"] = ["127.0.0.1"]

    result = _send(url)

    assert (result.succeeded, result.status_code) == (False, None)
    assert result.error == "Not sent: The host hooks.customer.test resolves to 127.0.0.1, a loopback address."
    assert receiver.received() == []


def test_the_request_names_the_host_of_the_url_and_goes_to_its_checked_address(
    receiver: WebhookReceiver, dns_zone: DnsZone
):
    dns_zone.hosts["hooks.customer.test"] = ["127.0.0.1"]

    result = _send(f"http://hooks.customer.test:{receiver.port}/in?source=portalsite")

    [request] = receiver.received()
    assert (request.path, request.headers["host"]) == ("/in?source=portalsite", f"hooks.customer.test:{receiver.port}")
    assert result.succeeded


# HTTPS -----------------------------------------------------------------------------------------

TLS_HOST = "hooks.customer.test"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for TLS_HOST (openssl), and its key."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
         "-subj", f"/CN={TLS_HOST}", "-addext", f"subjectAltName=DNS:{TLS_HOST}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_receiver(
    certificate: tuple[str, str], settings, dns_zone: DnsZone, monkeypatch: pytest.MonkeyPatch
) -> Iterator[WebhookReceiver]:
    """An HTTPS receiver on loopback for TLS_HOST, whose certificate our TLS client trusts (SSL_CERT_FILE)."""
    monkeypatch.setenv("SSL_CERT_FILE", certificate[0])
    settings.WEBHOOK_ALLOW_HTTP, settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False, True
    settings.WEBHOOK_TIMEOUT = 5.0
    dns_zone.hosts[TLS_HOST] = ["127.0.0.1"]
    with WebhookReceiver(certificate=certificate) as server:
        yield server


def test_https_goes_to_the_checked_address_and_verifies_the_certificate_for_the_host(tls_receiver: WebhookReceiver):
    result = _send(f"https://{TLS_HOST}:{tls_receiver.port}/hooks")

    assert (result.succeeded, result.status_code, result.error) == (True, 200, "")
    [request] = tls_receiver.received()
    assert request.headers["host"] == f"{TLS_HOST}:{tls_receiver.port}"


def test_a_certificate_for_another_name_is_refused(tls_receiver: WebhookReceiver, dns_zone: DnsZone):
    dns_zone.hosts["impostor.customer.test"] = ["127.0.0.1"]

    result = _send(f"https://impostor.customer.test:{tls_receiver.port}/hooks")

    assert (result.succeeded, result.status_code) == (False, None)
    assert "CERTIFICATE_VERIFY_FAILED" in result.error and "impostor.customer.test" in result.error
    assert tls_receiver.received() == []


def test_the_deploy_check_warns_about_the_development_switches_in_production(settings):
    from django.core.checks import run_checks

    settings.DEBUG, settings.WEBHOOK_ALLOW_HTTP, settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False, False, True
    assert [message.msg for message in run_checks(include_deployment_checks=True) if message.id == "events.W001"] == [
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS is on with DEBUG=false: it is for development and tests only."
    ]
    settings.DEBUG = True
    assert [message for message in run_checks(include_deployment_checks=True) if message.id == "events.W001"] == []
