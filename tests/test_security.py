"""Security posture: production settings and headers, throttles on every credential and invite
endpoint, invitation tokens that never leak, password hashing, JWT keys from the environment."""

import json
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import mail
from django.core.cache import cache
from rest_framework.test import APIClient

from portalsite.db import database_url
from tests.conftest import invite_token
from tests.factories import UserFactory
from tests.jobs import run_jobs

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parent.parent

_PRODUCTION_PROBE = """
import json, django
django.setup()
from django.conf import settings as s
from django.test import Client
r = Client().get("/healthz", HTTP_HOST="localhost", secure=True)
print(json.dumps({
    "debug": s.DEBUG, "ssl_redirect": s.SECURE_SSL_REDIRECT, "hsts": s.SECURE_HSTS_SECONDS,
    "session_secure": s.SESSION_COOKIE_SECURE, "csrf_secure": s.CSRF_COOKIE_SECURE,
    "jwt_key_is_env": s.SIMPLE_JWT["SIGNING_KEY"] == "jwt-key-from-env-" + "x" * 40,
    "access_seconds": s.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds(),
    "hasher": s.PASSWORD_HASHERS[0],
    "headers": {k: r.headers.get(k) for k in (
        "Strict-Transport-Security", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy",
        "Cross-Origin-Opener-Policy")},
    "plain_http": Client().get("/v1/portal", HTTP_HOST="localhost").status_code,
}))
"""


def test_production_mode_is_locked_down():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portalsite.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "JWT_SIGNING_KEY": "jwt-key-from-env-" + "x" * 40,
        "ALLOWED_HOSTS": "localhost",
        "DATABASE_URL": database_url(),
    }
    result = subprocess.run(
        [sys.executable, "-c", _PRODUCTION_PROBE], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])

    assert probe["debug"] is False
    assert probe["ssl_redirect"] and probe["session_secure"] and probe["csrf_secure"]
    assert probe["hsts"] >= 31_536_000
    assert probe["jwt_key_is_env"]
    assert probe["access_seconds"] <= 15 * 60
    assert probe["hasher"].endswith("Argon2PasswordHasher")
    assert probe["headers"]["Strict-Transport-Security"].startswith("max-age=31536000; includeSubDomains")
    assert probe["headers"]["X-Content-Type-Options"] == "nosniff"
    assert probe["headers"]["X-Frame-Options"] == "DENY"
    assert probe["headers"]["Referrer-Policy"] == "same-origin"
    assert probe["plain_http"] == 301  # plain HTTP is redirected to HTTPS


def _throttle(settings, scope: str, rate: str) -> None:
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], scope: rate}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}


def _assert_throttled(responses: list, allowed_status: int) -> None:
    *allowed, refused = responses
    assert [response.status_code for response in allowed] == [allowed_status] * len(allowed)
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert "detail" in refused.json()


def test_refresh_is_throttled(settings, api_client):
    _throttle(settings, "auth", "2/min")
    _assert_throttled(
        [api_client.post("/v1/auth/token/refresh", {"refresh": "x"}, format="json") for _ in range(3)], 401
    )


def test_invitation_acceptance_is_throttled(settings, portal_client):
    _throttle(settings, "auth", "2/min")
    body = {"token": "x" * 43, "password": "whatever-it-is"}
    _assert_throttled(
        [portal_client.post("/v1/customer-portal/invitations/accept", body, format="json") for _ in range(3)], 404
    )


def test_invite_endpoints_are_throttled_per_account(settings, portal, owner_api, owner_on_portal):
    _throttle(settings, "invite", "2/min")
    calls = [
        lambda n: owner_api.post(f"/v1/portal/{portal.id}/users", {"users": [{"email": f"a{n}@x.org"}]}, format="json"),
        lambda n: owner_on_portal.post("/v1/customer-portal/users/invite", {"email": f"b{n}@x.org"}, format="json"),
        lambda n: owner_on_portal.post("/v1/customer-portal/invitations", {"email": f"c{n}@x.org"}, format="json"),
    ]
    for call in calls:
        cache.clear()
        _assert_throttled([call(n) for n in range(3)], 201)


def test_invitation_tokens_never_reach_responses_or_logs(
    portal, portal_host, owner_api, caplog, django_capture_on_commit_callbacks
):
    with caplog.at_level(logging.DEBUG):
        with django_capture_on_commit_callbacks(execute=True):
            invited = owner_api.post(f"/v1/portal/{portal.id}/users", {"users": [{"email": "g@x.org"}]}, format="json")
        run_jobs()  # the e-mail jobs the change queued
        token = invite_token(mail.outbox[-1])
        accepted = APIClient(HTTP_HOST=portal_host).post(
            "/v1/customer-portal/invitations/accept",
            {"token": token, "password": "a-Long-passphrase-42"},
            format="json",
        )

    assert accepted.status_code == 200
    assert len(token) >= 43  # 256 bits of entropy, URL-safe base64
    assert token not in invited.content.decode()
    assert token not in caplog.text


@pytest.mark.parametrize(
    ("unset", "others"),
    [("DATABASE_URL", {"SECRET_KEY": "k" * 50}), ("SECRET_KEY", {"DATABASE_URL": "postgres://u@127.0.0.1:9/x"})],
    ids=["no-database-url", "no-secret-key"],
)
def test_production_refuses_to_start_on_laptop_defaults(tmp_path, unset, others):
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "SECRET_KEY")}
    env.update(DJANGO_SETTINGS_MODULE="portalsite.settings", DEBUG="false", DATA_DIR=str(tmp_path), **others)

    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {unset} is not set; DEBUG=false (production) needs it in the environment"
    ]
    assert not (tmp_path / "secret_key").exists() and not (tmp_path / "pg").exists()  # nothing generated


_PROXY_PROBE = """
import json, django
django.setup()
from django.test import Client
r = Client().get("/v1/portal", HTTP_HOST="localhost", HTTP_X_FORWARDED_PROTO="https")
print(json.dumps({"status": r.status_code}))
"""


@pytest.mark.parametrize(("extra", "status"), [({}, 301), ({"NUM_PROXIES": "1"}, 401),
                                               ({"TRUST_X_FORWARDED_PROTO": "true"}, 401)],
                         ids=["no-proxy-declared", "num-proxies", "own-variable"])  # fmt: skip
def test_x_forwarded_proto_is_believed_only_when_a_proxy_is_declared(extra, status):
    env = {key: value for key, value in os.environ.items() if key not in ("NUM_PROXIES", "TRUST_X_FORWARDED_PROTO")}
    env.update(
        DJANGO_SETTINGS_MODULE="portalsite.settings", DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL=database_url(), ALLOWED_HOSTS="localhost", **extra,
    )  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", _PROXY_PROBE], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr

    # Plain HTTP that claims to be HTTPS: without a declared proxy that is the client talking, and it is
    # redirected; behind a declared proxy the request counts as HTTPS (and gets the API's 401).
    assert json.loads(result.stdout.strip().splitlines()[-1])["status"] == status


def test_dry_runs_are_throttled_like_invites_and_recorded_without_addresses(settings, owner, owner_api, caplog):
    _throttle(settings, "invite", "2/min")
    portal_id = owner_api.post("/v1/portal", {"name": "Acme"}, format="json").json()["id"]
    UserFactory(email="someone-known@x.org")

    with caplog.at_level(logging.INFO, logger="customer_portal.services"):
        responses = [
            owner_api.post(
                f"/v1/portal/{portal_id}/users?dry_run=true",
                {"users": [{"email": "someone-known@x.org"}, {"email": f"probe{n}@x.org"}]},
                format="json",
            )
            for n in range(3)
        ]

    _assert_throttled(responses, 200)  # a dry run counts against the same per-account budget as an invite
    records = [record.getMessage() for record in caplog.records if "dry-run invite" in record.getMessage()]
    assert (
        records
        == [
            f"dry-run invite to portal acme ({portal_id}) by account {owner.pk}: 2 e-mails, 1 would be linked, "
            "1 invited, 0 members"
        ]
        * 2
    )
    assert "x.org" not in caplog.text
