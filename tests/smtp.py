"""A real SMTP server on loopback for tests and the bench (bench.emails): aiosmtpd, in a thread of its own.

It speaks SMTP as a mail relay would, and can be told to misbehave the ways relays do:

- `delay`: seconds it takes to accept each message (after the data, before its 250);
- `tempfail(n)`: the next n recipients get `451 4.3.0` (a relay that is overloaded, greylisting);
- `refuse(address)`: that recipient gets `550 5.1.1` every time (no such mailbox);
- `stop()` / `start()`: nothing listens on the port meanwhile (connection refused);
- `hold()` / `release()`: messages wait, data received, without an answer until released;
  `arrived` is set when one is waiting. A client that goes away meanwhile never had a 250: its
  message is not accepted, only counted in `abandoned` (`wait_abandoned(n)` waits for that).

`messages` holds what the server accepted (answered 250 to), in order.
"""

import asyncio
import socket
import threading
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

TEMPORARY_FAILURE = "451 4.3.0 Mail server temporarily rejected message, try again later"
PERMANENT_FAILURE = "550 5.1.1 <{address}>: Recipient address rejected: User unknown in virtual mailbox table"


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    accepted_at: float  # time.monotonic() when the server answered 250

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def text(self) -> str:
        return self._part("plain")

    def html(self) -> str:
        return self._part("html")

    def _part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None
        content = body.get_content()
        assert isinstance(content, str)
        return content


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _parsed(content: bytes) -> EmailMessage:
    message = message_from_bytes(content, policy=policy.default)
    assert isinstance(message, EmailMessage)  # what the default policy makes
    return message


class _Handler:
    def __init__(self, server: "SmtpServer") -> None:
        self.server = server

    async def handle_RCPT(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        with self.server._lock:
            if address.lower() in self.server._refused:
                return PERMANENT_FAILURE.format(address=address)
            if self.server._tempfails > 0:
                self.server._tempfails -= 1
                return TEMPORARY_FAILURE
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        self.server.arrived.set()
        if self.server.delay:
            try:
                await asyncio.sleep(self.server.delay)
            except asyncio.CancelledError:
                with self.server._lock:
                    self.server.abandoned += 1
                raise
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.server._released.wait)
        except asyncio.CancelledError:
            # The client went away while we waited (aiosmtpd cancels this coroutine): nothing was accepted.
            with self.server._lock:
                self.server.abandoned += 1
            raise
        content = envelope.original_content or b""
        received = Received(
            sender=str(envelope.mail_from),
            recipients=list(envelope.rcpt_tos),
            message=_parsed(content),
            accepted_at=time.monotonic(),
        )
        with self.server._lock:
            self.server.messages.append(received)
        return "250 2.0.0 Ok: queued"


class SmtpServer:
    def __init__(self, *, delay: float = 0.0, port: int | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.delay = delay
        self.messages: list[Received] = []
        self.abandoned = 0  # messages whose client went away before the server's answer
        self.arrived = threading.Event()
        self._released = threading.Event()
        self._released.set()
        self._lock = threading.Lock()
        self._refused: set[str] = set()
        self._tempfails = 0
        self._controller: Controller | None = None

    # Lifecycle

    def start(self) -> "SmtpServer":
        assert self._controller is None, "already listening"
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port, ready_timeout=10)
        self._controller.start()
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            self._released.set()  # no held message keeps the loop from stopping
            controller.stop()

    def __enter__(self) -> "SmtpServer":
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The EMAIL_URL that sends here."""
        return f"smtp://{self.host}:{self.port}"

    def django_settings(self) -> dict[str, Any]:
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": self.host,
            "EMAIL_PORT": self.port,
            "EMAIL_HOST_USER": "",
            "EMAIL_HOST_PASSWORD": "",
            "EMAIL_USE_TLS": False,
            "EMAIL_USE_SSL": False,
            "EMAIL_TIMEOUT": 10,
        }

    # Misbehaviour

    def tempfail(self, count: int) -> None:
        with self._lock:
            self._tempfails = count

    def refuse(self, address: str) -> None:
        with self._lock:
            self._refused.add(address.lower())

    def accept(self, address: str) -> None:
        """Stop refusing `address` (its mailbox exists now)."""
        with self._lock:
            self._refused.discard(address.lower())

    def hold(self) -> None:
        self.arrived.clear()
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    # Reading

    def received(self) -> list[Received]:
        with self._lock:
            return list(self.messages)

    def wait_abandoned(self, count: int, timeout: float = 10.0) -> None:
        """Until `count` clients have gone away before the server's answer (it notices within milliseconds)."""
        deadline = time.monotonic() + timeout
        while self.abandoned < count:
            assert time.monotonic() < deadline, f"{self.abandoned} of {count} abandoned messages seen"
            time.sleep(0.01)

    def to(self, address: str) -> list[Received]:
        return [message for message in self.received() if address.lower() in (r.lower() for r in message.recipients)]
