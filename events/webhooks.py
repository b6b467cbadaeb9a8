"""Webhooks on the wire: which URLs may be called, how a delivery is signed, and one POST to an endpoint.

URL policy (API.md "Webhooks"): `https` only, and every address the host resolves to must be public
(not loopback, private, link-local, multicast, reserved or unspecified). It is checked when an
endpoint is registered or changed (a 422 on `url`) and again before every delivery, since DNS can
change between the two: the connection then goes to the very address that was checked (pinned;
TLS still verifies the certificate against the host name), so a second lookup cannot swap it.
`WEBHOOK_ALLOW_HTTP` and `WEBHOOK_ALLOW_PRIVATE_NETWORKS` lift the two rules for development and
tests. Redirects are never followed: a 3xx is a failed attempt.

Signing follows the Standard Webhooks spec through its reference package (`standardwebhooks`):
`webhook-id` (the event id, the same on every try), `webhook-timestamp` (this try's Unix time) and
`webhook-signature`, one `v1,<base64 HMAC-SHA256>` per secret, space separated: during a rotation
the previous secret signs too, so receivers that still hold it keep verifying.

A try has WEBHOOK_TIMEOUT seconds from connecting to the status line; the response body is read up
to RESPONSE_BODY_LIMIT bytes, for the attempt's record, and the rest is never read.
"""

import base64
import contextlib
import http.client
import ipaddress
import json
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from standardwebhooks import Webhook

from portalsite.dns import HostLookupError, IPAddress, host_addresses
from portalsite.errors import ApplicationError

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's public prefix)
RESPONSE_BODY_LIMIT = 1024  # bytes of an endpoint's answer that are read and kept (its error page, say)
ERROR_LIMIT = 500  # characters of an attempt's error that are kept
URL_MAX_LENGTH = 2000
USER_AGENT = "portalsite-webhooks/1"


class WebhookUrlRefused(Exception):
    """A URL that must not be called; the message says why, for the 422 or the attempt's record."""


# Secrets ---------------------------------------------------------------------------------------


def webhook_secret_new() -> str:
    """A new signing secret: `whsec_` and 256 random bits in base64, the Standard Webhooks format."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


# URL policy ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookTarget:
    """Where one delivery goes: the URL's parts and the checked address the connection is pinned to."""

    scheme: str
    host: str  # as in the URL, lowercased, without brackets
    port: int
    path: str  # path and query, as sent in the request line
    address: IPAddress

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


_IETF_PROTOCOL_ASSIGNMENTS = ipaddress.ip_network("192.0.0.0/24")


def _address_refusal(address: IPAddress) -> str | None:
    """Why an endpoint must not be at `address`, if it must not (None: a public address). An IPv6 address that
    carries an IPv4 one (6to4, Teredo) is judged by that one too: Python before 3.11.10 (CVE-2024-4032) calls
    some of them global."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = [address.sixtofour, *(address.teredo or ())]
        for inner in filter(None, embedded):
            refusal = _address_refusal(inner)
            if refusal is not None:
                return refusal
        if address.is_site_local:
            return "a site-local address"
    elif address in _IETF_PROTOCOL_ASSIGNMENTS:  # private since Python 3.11.10, "global" before
        return "a reserved address"
    for kind, flag in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    ):
        if flag:
            return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} address"
    return None if address.is_global else "not a public address"


def _parts(url: str) -> tuple[str, str, int, str]:
    """Scheme, host, port and request path of an acceptable URL; raises WebhookUrlRefused."""
    if len(url) > URL_MAX_LENGTH:
        raise WebhookUrlRefused(f"The URL is longer than {URL_MAX_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookUrlRefused(f"Not a valid URL: {exc}.") from exc
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if settings.WEBHOOK_ALLOW_HTTP else ("https",)
    if scheme not in allowed:
        raise WebhookUrlRefused("The URL must start with https://." if scheme != "https" else "Not a valid URL.")
    if not parts.hostname:
        raise WebhookUrlRefused("The URL has no host.")
    if parts.username is not None or parts.password is not None:
        # Credentials in a URL end up in logs and admin pages; receivers verify the signature instead.
        raise WebhookUrlRefused("The URL must not contain a user name or password.")
    if any(ord(char) <= 32 or ord(char) == 127 for char in url):
        raise WebhookUrlRefused("The URL must not contain spaces or control characters.")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80), path


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def webhook_target(url: str) -> WebhookTarget:
    """Check `url` against the policy and resolve its host now; raises WebhookUrlRefused saying why.

    Every address the host has must pass, not only the first: a name with one public and one private
    address could otherwise be steered to the private one.
    """
    scheme, host, port, path = _parts(url)
    try:
        addresses = host_addresses(host)
    except HostLookupError as exc:
        raise WebhookUrlRefused(f"The host {exc}.") from exc
    if not settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS:
        for address in addresses:
            refusal = _address_refusal(address)
            if refusal is not None and _is_address(host):
                raise WebhookUrlRefused(f"{address} is {refusal}.")
            if refusal is not None:
                raise WebhookUrlRefused(f"The host {host} resolves to {address}, {refusal}.")
    return WebhookTarget(scheme=scheme, host=host, port=port, path=path, address=addresses[0])


def webhook_url_validate(url: str, *, loc: Sequence[str | int] = ("url",)) -> str:
    """`url` if an endpoint may be registered at it, else a 422 on `loc` saying why (API.md "Webhooks")."""
    try:
        webhook_target(url)
    except WebhookUrlRefused as exc:
        raise ApplicationError(str(exc), loc=loc) from exc
    return url


# Signing ---------------------------------------------------------------------------------------


def webhook_body(*, event_id: str, event_type: str, timestamp: str, data: Mapping[str, Any]) -> str:
    """The JSON a delivery carries, exactly as signed: `{"id", "type", "timestamp", "data"}` (`timestamp`:
    when the event happened, ISO 8601)."""
    message = {"id": event_id, "type": event_type, "timestamp": timestamp, "data": data}
    return json.dumps(message, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)


def webhook_headers(*, msg_id: str, body: str, signing_secrets: Sequence[str], at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers for `body` sent at `at`, one signature per secret (current first)."""
    assert signing_secrets, "a delivery is signed with at least one secret"
    at = at.astimezone(UTC)
    signatures = [Webhook(secret).sign(msg_id, at, body) for secret in signing_secrets]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


# Sending ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookAttemptResult:
    """How one POST went: the endpoint's status code (None without an answer) and, unless it was a 2xx,
    why it failed; the first RESPONSE_BODY_LIMIT bytes of the answer; how long it took."""

    status_code: int | None
    error: str
    response_excerpt: str
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to the checked address, whatever the host name resolves to meanwhile; TLS is
    verified against the host name (SNI too). `abort()` from another thread ends it (the deadline)."""

    def __init__(self, target: WebhookTarget, *, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.target = target
        self.aborted = False
        self._raw: socket.socket | None = None
        self._lock = threading.Lock()

    def connect(self) -> None:
        raw = socket.create_connection((str(self.target.address), self.target.port), timeout=self.timeout)
        with self._lock:
            self._raw = raw
            if self.aborted:
                raw.close()
                raise TimeoutError("timed out")
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.target.scheme == "https":
            self.sock = ssl.create_default_context().wrap_socket(raw, server_hostname=self.target.host)
        else:
            self.sock = raw

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            if self._raw is not None:
                with contextlib.suppress(OSError):  # already closed
                    self._raw.shutdown(socket.SHUT_RDWR)


def webhook_post(*, url: str, body: str, headers: Mapping[str, str]) -> WebhookAttemptResult:
    """POST `body` to `url` once, under the URL policy (checked again now) and WEBHOOK_TIMEOUT; never raises
    for anything the endpoint or the network does: that is the result."""
    started = time.monotonic()

    def result(status_code: int | None, error: str, excerpt: bytes = b"") -> WebhookAttemptResult:
        return WebhookAttemptResult(
            status_code=status_code,
            error=error[:ERROR_LIMIT],
            response_excerpt=excerpt.decode("utf-8", errors="replace"),
            duration_ms=round((time.monotonic() - started) * 1000),
        )

    try:
        target = webhook_target(url)
    except WebhookUrlRefused as exc:
        return result(None, f"Not sent: {exc}")
    timeout = settings.WEBHOOK_TIMEOUT
    connection = _PinnedConnection(target, timeout=timeout)
    deadline = threading.Timer(timeout, connection.abort)
    deadline.daemon = True
    deadline.start()
    try:
        request_headers = {
            **headers,
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        try:
            connection.request("POST", target.path, body=body.encode(), headers=request_headers)
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            if connection.aborted or isinstance(exc, TimeoutError):
                return result(None, f"No answer within WEBHOOK_TIMEOUT ({timeout:g} s).")
            return result(None, f"Could not reach {target.host_header} ({target.address}): {exc or type(exc).__name__}")
        try:
            excerpt = response.read(RESPONSE_BODY_LIMIT)
        except (OSError, http.client.HTTPException):
            excerpt = b""  # the status came in time; a body that does not is not waited for
        status = response.status
        if 200 <= status < 300:
            return result(status, "", excerpt)
        if 300 <= status < 400:
            location = response.getheader("Location", "")
            return result(status, f"HTTP {status}: redirects are not followed (Location: {location}).", excerpt)
        return result(status, f"HTTP {status} {response.reason}".strip(), excerpt)
    finally:
        deadline.cancel()
        connection.close()


def webhook_send(
    *, url: str, event_id: str, body: str, signing_secrets: Sequence[str], at: datetime | None = None
) -> WebhookAttemptResult:
    """Sign `body` now (or `at`) with `signing_secrets` and POST it to `url` once."""
    headers = webhook_headers(
        msg_id=event_id, body=body, signing_secrets=signing_secrets, at=at or datetime.now(tz=UTC)
    )
    return webhook_post(url=url, body=body, headers=headers)


__all__ = [
    "RESPONSE_BODY_LIMIT",
    "WebhookAttemptResult",
    "WebhookTarget",
    "WebhookUrlRefused",
    "webhook_body",
    "webhook_headers",
    "webhook_post",
    "webhook_secret_new",
    "webhook_send",
    "webhook_target",
    "webhook_url_validate",
]
