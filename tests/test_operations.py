"""Operations: settings from the environment, the embedded database, health, one-line failures."""

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import environ
import psycopg
import pytest

import portalsite.settings as production_settings
from portalsite.db import database_url
from portalsite.mail_settings import email_settings

REPO = Path(__file__).resolve().parent.parent
UNREACHABLE_URL = "postgres://portalsite@127.0.0.1:9/nowhere"


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_is_clean_in_production():
    result = _run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="api.example.com",
        DATABASE_URL=database_url(),
        DJANGO_SETTINGS_MODULE="portalsite.settings",
    )

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_an_unreachable_database_is_a_one_line_error():
    result = _run(["manage.py", "migrate"], DATABASE_URL=UNREACHABLE_URL, DJANGO_SETTINGS_MODULE="portalsite.settings")

    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot reach the database at postgresql://portalsite@127.0.0.1:9/nowhere")


def test_healthz_is_503_when_the_database_is_down():
    script = (
        "import django, json; django.setup(); from django.test import Client; "
        "r = Client().get('/healthz', HTTP_HOST='localhost'); print(json.dumps([r.status_code, r.json()]))"
    )
    result = _run(["-c", script], DATABASE_URL=UNREACHABLE_URL, DJANGO_SETTINGS_MODULE="portalsite.settings_test")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [503, {"status": "error", "database": "unavailable"}]


def test_an_unset_secret_key_is_generated_once_and_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(production_settings, "DATA_DIR", tmp_path / "data")

    first = production_settings._secret_key_from_data_dir()
    second = production_settings._secret_key_from_data_dir()

    assert first == second
    assert len(first) >= 50
    assert (tmp_path / "data" / "secret_key").stat().st_mode & 0o077 == 0


_START_EMBEDDED = (
    "import json, sys, time; from pathlib import Path; t = time.monotonic(); "
    "from portalsite.embedded_db import embedded_database_settings; "
    "s = embedded_database_settings(Path(sys.argv[1])); "
    "print(json.dumps({'host': s['HOST'], 'name': s['NAME'], 'seconds': time.monotonic() - t}))"
)


def test_several_processes_start_and_share_one_embedded_server():
    # Outside pytest's tmp_path, as tests/test_live.py explains: as root, PostgreSQL runs as `pgserver`, which
    # must traverse every parent folder, and another pytest session makes /tmp/pytest-of-<user> private again.
    root = Path(tempfile.mkdtemp(prefix="portalsite-embedded-"))
    data_dir = root / "data"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _START_EMBEDDED, str(data_dir)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        outputs = [proc.communicate(timeout=120) for proc in procs]
        assert all(proc.returncode == 0 for proc in procs), outputs
        started = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
        assert len({s["host"] for s in started}) == 1
        # The server outlives the processes that started it, so a later process joins it at once.
        begin = time.monotonic()
        rejoin = _run(["-c", _START_EMBEDDED, str(data_dir)])
        assert rejoin.returncode == 0, rejoin.stderr
        assert time.monotonic() - begin < 30
        with psycopg.connect(host=started[0]["host"], dbname=started[0]["name"], user="postgres") as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        _stop_embedded_server(data_dir / "pg")
        shutil.rmtree(root, ignore_errors=True)


def _stop_embedded_server(pgdata: Path) -> None:
    from pgserver._commands import pg_ctl

    if (pgdata / "postmaster.pid").exists():
        user = "pgserver" if os.geteuid() == 0 else None
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)


@pytest.mark.django_db
def test_the_embedded_server_is_used_when_database_url_is_unset():
    from django.conf import settings

    if os.environ.get("DATABASE_URL"):
        assert settings.DATABASES["default"]["HOST"] == urlsplit(os.environ["DATABASE_URL"]).hostname
    else:
        assert Path(settings.DATABASES["default"]["HOST"]).exists()  # the socket folder of the embedded server
    assert settings.DATABASES["default"]["ENGINE"] == "portalsite.db_backend"


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("filemail:///var/mail/portalsite", "/var/mail/portalsite"),
        ("filemail:////var/mail", "/var/mail"),
        ("filemail://outbox/portalsite", "outbox/portalsite"),
        ("filemail:///var/mail%20box", "/var/mail box"),
    ],
    ids=["absolute", "four-slashes", "relative", "quoted"],
)
def test_filemail_urls_keep_their_path(url, path):
    config = email_settings(url)

    assert config["EMAIL_BACKEND"] == "django.core.mail.backends.filebased.EmailBackend"
    assert config["EMAIL_FILE_PATH"] == path


def test_other_email_urls_are_read_as_django_environ_reads_them():
    for url in ("smtp://user:secret@mail.example.com:587", "consolemail://", "smtp+tls://mail.example.com:587"):
        assert email_settings(url) == environ.Env.email_url_config(url)


def test_the_documented_filemail_url_writes_into_that_absolute_folder(tmp_path):
    outbox = tmp_path / "outbox"  # absolute; the command runs in the repository, elsewhere
    result = _run(
        ["manage.py", "sendtestemail", "someone@example.com"],
        EMAIL_URL=f"filemail://{outbox}",
        DJANGO_SETTINGS_MODULE="portalsite.settings",
    )

    assert result.returncode == 0, result.stderr
    [message] = outbox.iterdir()
    assert "To: someone@example.com" in message.read_text()
    assert not (REPO / str(outbox).lstrip("/")).exists()
