"""A real HTTP server on loopback that receives webhooks, for tests and the bench (bench.webhooks).

`http.server` in a thread of its own (a thread per request). It records every request it gets
(`received()`), and answers as a customer's endpoint might:

- `answer(Reply(...), ...)`: the next requests get these replies, in order (status, delay before the
  answer, body, headers); after them, `default` (200 with an empty body unless changed);
- `redirect_to(url)`: shorthand for a 307 to `url`;
- `stop()`: nothing listens on the port meanwhile (connection refused).

`url(path)` is where to point an endpoint (plain http on 127.0.0.1: tests set WEBHOOK_ALLOW_HTTP and
WEBHOOK_ALLOW_PRIVATE_NETWORKS). With `certificate=(certfile, keyfile)` it speaks HTTPS instead.
"""

import contextlib
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass(frozen=True)
class Reply:
    status: int = 200
    delay: float = 0.0  # seconds before the status line is sent
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lowercased
    body: bytes
    received_at: float  # time.monotonic() when the body had arrived
    reply_status: int

    def text(self) -> str:
        return self.body.decode()


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        receiver = self.server.receiver
        reply = receiver._next_reply()
        receiver._record(
            ReceivedRequest(
                method="POST",
                path=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
                received_at=time.monotonic(),
                reply_status=reply.status,
            )
        )
        if reply.delay:
            time.sleep(reply.delay)
        with contextlib.suppress(OSError):  # the client gave up (its timeout) or read only part of the body
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(reply.body)
        self.close_connection = True

    do_GET = do_POST

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the requests are recorded instead


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: "WebhookReceiver"

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that went away mid-answer is expected (timeouts, partial reads)


class WebhookReceiver:
    def __init__(self, *, default: Reply | None = None, certificate: tuple[str, str] | None = None) -> None:
        self.host = "127.0.0.1"
        self.certificate = certificate
        self.default = default or Reply()
        self._replies: deque[Reply] = deque()
        self._requests: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # Lifecycle

    def start(self) -> "WebhookReceiver":
        assert self._server is None, "already listening"
        server = _Server((self.host, self.port), _Handler)
        server.receiver = self
        if self.certificate is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.certificate)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> "WebhookReceiver":
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def url(self, path: str = "/hooks") -> str:
        assert self.port, "start() it first"
        return f"{'https' if self.certificate else 'http'}://{self.host}:{self.port}{path}"

    # Behaviour

    def answer(self, *replies: Reply | int) -> None:
        """The next requests get these replies (a bare int is that status, at once), then `default`."""
        with self._lock:
            self._replies.extend(Reply(status=reply) if isinstance(reply, int) else reply for reply in replies)

    def redirect_to(self, url: str, *, status: int = 307) -> None:
        self.answer(Reply(status=status, headers={"Location": url}))

    def _next_reply(self) -> Reply:
        with self._lock:
            return self._replies.popleft() if self._replies else self.default

    def _record(self, request: ReceivedRequest) -> None:
        with self._arrived:
            self._requests.append(request)
            self._arrived.notify_all()

    # Reading

    def received(self, path: str | None = None) -> list[ReceivedRequest]:
        with self._lock:
            return [request for request in self._requests if path is None or request.path == path]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._replies.clear()

    def wait_for(self, count: int, *, timeout: float = 10.0) -> list[ReceivedRequest]:
        """Every request received, once there are at least `count` (AssertionError after `timeout`)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self._requests) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(self._requests)} of {count} webhook requests arrived"
                self._arrived.wait(left)
            return list(self._requests)
