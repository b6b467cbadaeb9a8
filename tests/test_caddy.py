"""deploy/Caddyfile for real (marked slow): Debian's caddy in front of gunicorn, with `tls internal` (Caddy's own
CA, no ACME, no internet). A portal host and a verified custom domain get a certificate on demand and are
proxied to portalsite; an unknown host and a custom domain still pending get none (the handshake fails).

Skipped with the install hint where caddy is missing (.ci/run installs it with apt-get, as it does Chromium).
"""

import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dns_server import start_dns_server
from tests.test_live import REPO, LiveStack, _free_port, admin_token, call, print_report, stack  # noqa: F401

pytestmark = pytest.mark.slow

CADDY = shutil.which("caddy")
START_TIMEOUT = 30.0


def _handshake(port: int, host: str, ca_file: Path) -> tuple[str, int, dict[str, object]]:
    """TLS to 127.0.0.1:port with SNI `host`, the certificate checked against Caddy's root; then GET /healthz."""
    context = ssl.create_default_context(cafile=str(ca_file))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=15) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        names = [value for kind, value in tls.getpeercert().get("subjectAltName", ()) if kind == "DNS"]
        tls.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        response = b""
        while chunk := tls.recv(65536):
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return ",".join(names), status, json.loads(body) if body.strip().startswith(b"{") else {}


@pytest.fixture
def caddy_ports() -> tuple[int, int]:
    return _free_port(), _free_port()


@contextlib.contextmanager
def _caddy(work: Path, upstream_port: int, http_port: int, https_port: int) -> Iterator[subprocess.Popen[bytes]]:
    extra = work / "extra.caddy"
    extra.write_text(
        f"http_port {http_port}\nhttps_port {https_port}\nadmin off\nskip_install_trust\n"
        f"storage file_system {{\n\troot {work / 'storage'}\n}}\n"
    )
    env = {
        **os.environ,
        "HOME": str(work),
        "XDG_DATA_HOME": str(work / "data"),
        "XDG_CONFIG_HOME": str(work / "config"),
        "PORTALSITE_UPSTREAM": f"127.0.0.1:{upstream_port}",
        "PORTALSITE_TLS_ISSUER": "internal",
        "PORTALSITE_MAIN_HOST": "localhost",
        "PORTALSITE_CADDY_EXTRA": str(extra),
    }
    log = (work / "caddy.log").open("ab")
    process = subprocess.Popen(
        [str(CADDY), "run", "--config", str(REPO / "deploy" / "Caddyfile"), "--adapter", "caddyfile"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert process.poll() is None, (work / "caddy.log").read_text()[-3000:]
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", https_port), timeout=1):
                break
            time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@pytest.mark.skipif(CADDY is None, reason="caddy is not installed: apt-get install caddy (Debian's 2.6 package)")
def test_caddy_gets_certificates_only_for_hosts_portalsite_vouches_for(
    stack: LiveStack,  # noqa: F811
    caddy_ports: tuple[int, int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, zone, dns_port = start_dns_server()
    try:
        stack.gunicorn_env = {"DNS_RESOLVERS": f"127.0.0.1:{dns_port}", "NUM_PROXIES": "1"}
        stack.start_gunicorn()
        token = admin_token(stack)
        verified = call(
            stack.port, "POST", "/v1/portal", token=token,
            body={"name": "Verified", "slug": "verified", "custom_domain": "portal.verified.test"},
        )  # fmt: skip
        pending = call(
            stack.port, "POST", "/v1/portal", token=token,
            body={"name": "Pending", "slug": "pending", "custom_domain": "portal.pending.test"},
        )  # fmt: skip
        assert (verified.status, pending.status) == (201, 201), (verified.body, pending.body)
        record = verified.body["custom_domain_verification"]
        zone.txt[record["name"]] = [record["value"]]
        proven = call(stack.port, "POST", f"/v1/portal/{verified.body['id']}/custom-domain/verify", token=token)
        assert proven.body["custom_domain_status"] == "verified", proven.body

        http_port, https_port = caddy_ports
        work = stack.work / "caddy"
        work.mkdir()
        with _caddy(work, stack.port, http_port, https_port):
            ca_file = work / "storage" / "pki" / "authorities" / "local" / "root.crt"
            outcomes: dict[str, str] = {}
            for host in ("demo.localhost", "portal.verified.test"):
                began = time.monotonic()
                names, status, body = _handshake(https_port, host, ca_file)
                outcomes[host] = f"certificate in {time.monotonic() - began:.2f} s, {status}"
                assert names == host
                assert (status, body) == (200, {"status": "ok", "database": "ok"})  # proxied to portalsite
            for host in ("nobody.example.test", "portal.pending.test", "pending.localhost.evil.test"):
                with pytest.raises(ssl.SSLError):
                    _handshake(https_port, host, ca_file)
                outcomes[host] = "no certificate"
            issued = sorted(path.name for path in (work / "storage").rglob("*.crt") if path.parent.name != "local")
        print_report(capsys, "caddy on-demand TLS: " + "; ".join(f"{h}: {o}" for h, o in outcomes.items()))
        # The main host's own (its site block, at start-up) and the two vouched-for hosts': nothing else.
        assert issued == ["demo.localhost.crt", "localhost.crt", "portal.verified.test.crt"]
    finally:
        server.stop()
