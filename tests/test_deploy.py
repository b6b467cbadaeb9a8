"""deploy/: the process definitions are valid and name the commands this code has."""

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import get_commands

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"


def procfile() -> dict[str, str]:
    processes = {}
    for line in (DEPLOY / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            processes[name.strip()] = command.strip()
    return processes


def _manage_commands(command_line: str) -> list[str]:
    """The manage.py subcommands a shell command line runs."""
    return re.findall(r"manage\.py (\w+)", command_line)


def test_the_procfile_runs_web_and_worker_and_migrates_first():
    processes = procfile()

    assert set(processes) == {"release", "web", "worker"}
    assert processes["web"].startswith("gunicorn portalsite.wsgi ")
    assert _manage_commands(processes["worker"]) == ["worker"]
    assert _manage_commands(processes["release"]) == ["migrate_schemas", "collectstatic"]
    assert {command for line in processes.values() for command in _manage_commands(line)} <= set(get_commands())


def _unit(name: str) -> dict[str, str]:
    unit = {}
    for line in (DEPLOY / "systemd" / name).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            unit[key] = value
    return unit


def test_the_worker_unit_stops_it_with_sigterm_and_waits_for_its_jobs():
    unit = _unit("portalsite-worker@.service")

    assert _manage_commands(unit["ExecStart"]) == ["worker"]
    assert unit["KillSignal"] == "SIGTERM" and unit["KillMode"] == "mixed"
    assert int(unit["TimeoutStopSec"]) >= 60
    assert unit["Restart"] == "always"


def test_the_web_unit_runs_gunicorn_after_the_deploy_check():
    unit = _unit("portalsite-web.service")

    assert shlex.split(unit["ExecStart"])[0].endswith("/gunicorn")
    assert "portalsite.wsgi" in shlex.split(unit["ExecStart"])
    assert _manage_commands(unit["ExecStartPre"]) == ["check"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_both_units(tmp_path: Path):
    # As installed here: this checkout for /srv/portalsite, this interpreter's environment, no env file.
    venv = Path(sys.executable).parent.parent
    names = {
        "portalsite-web.service": "portalsite-web.service",
        "portalsite-worker@.service": "portalsite-worker@1.service",
    }
    for source, target in names.items():
        text = (DEPLOY / "systemd" / source).read_text()
        text = text.replace("/srv/portalsite/.venv", str(venv)).replace("/srv/portalsite", str(REPO))
        text = text.replace("EnvironmentFile=/etc/portalsite/env", "EnvironmentFile=-/etc/portalsite/env")
        text = text.replace("User=portalsite", "User=root").replace("Group=portalsite", "Group=root")
        (tmp_path / target).write_text(text)

    analyze = shutil.which("systemd-analyze") or "systemd-analyze"
    result = subprocess.run(
        [analyze, "verify", "--man=no", *(str(tmp_path / name) for name in names.values())],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # unknown keys are only warnings: none either
