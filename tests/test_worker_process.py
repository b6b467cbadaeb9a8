"""`manage.py worker` as a real process, against a real SMTP server (marked slow: each test sets up a site).

Each test holds an e-mail inside the SMTP server (its data received, no answer yet), so a worker is
known to be in the middle of that job when the test signals it: deterministic, no sleeping and hoping.
- SIGTERM: the worker takes no new job, waits for the one it holds, and exits 0 once it is done.
- SIGKILL: the job stays `doing`; once the dead worker's heartbeat is JOBS_STALLED_AFTER old, the
  next worker to start puts it back in the queue and delivers it, exactly once.
"""

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live import INVITE_TO_DEMO, LiveSite, live_site, wait_until
from tests.smtp import SmtpServer

pytestmark = pytest.mark.slow

STALLED_AFTER = 2.0  # seconds: JOBS_STALLED_AFTER for these workers (heartbeat every 0.5 s)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def site(tmp_path: Path, smtp_server: SmtpServer) -> Iterator[LiveSite]:
    with live_site(
        tmp_path,
        EMAIL_URL=smtp_server.url,
        JOBS_HEARTBEAT_INTERVAL="0.5",
        JOBS_STALLED_AFTER=str(STALLED_AFTER),
    ) as live:
        # quickstart invited its demo guest: that e-mail is the first job (delivered by the first worker).
        yield live


def _invitation(site: LiveSite, email: str) -> tuple[str, int]:
    [(schema,)] = site.sql("SELECT schema_name FROM portals_portal WHERE slug = %s", ["demo"])
    [row] = site.sql(
        f'SELECT i.delivery_status, i.delivery_attempts FROM "{schema}".customer_portal_invitation i'  # noqa: S608
        f' JOIN "{schema}".customer_portal_portaluser u ON u.id = i.portal_user_id WHERE u.email = %s',
        [email],
    )
    return row[0], row[1]


def test_on_sigterm_a_worker_finishes_the_job_it_holds_then_exits_0(site: LiveSite, smtp_server: SmtpServer):
    smtp_server.hold()
    worker = site.start("worker", "--concurrency", "2", log="worker")
    try:
        assert smtp_server.arrived.wait(60), worker.log()  # it is in the middle of sending the demo invitation
        worker.signal(signal.SIGTERM)
        worker.wait_for_log("Stop requested")
        assert worker.popen.poll() is None  # still there: it waits for the job it holds

        smtp_server.release()
        assert worker.wait(timeout=60) == 0

        assert [message.recipients for message in smtp_server.received()] == [["guest@demo.example.com"]]
        assert _invitation(site, "guest@demo.example.com") == ("sent", 1)
        assert "Waiting for job to finish" in worker.log()
        assert site.sql("SELECT count(*) FROM procrastinate_workers") == [(0,)]  # it unregistered
    finally:
        smtp_server.release()
        worker.stop()


def test_a_worker_killed_mid_job_leaves_it_to_the_next_worker_which_sends_it_once(
    site: LiveSite, smtp_server: SmtpServer
):
    first = site.start("worker", log="first")
    try:  # the demo guest's e-mail first, so that the next job is the one we kill the worker in
        wait_until(lambda: smtp_server.to("guest@demo.example.com"), timeout=60, what="the demo e-mail", process=first)
        smtp_server.hold()
        site.python(INVITE_TO_DEMO, "killed@example.com")
        assert smtp_server.arrived.wait(60), first.log()

        first.popen.kill()  # SIGKILL: no chance to finish or to give the job back
        first.wait()
        smtp_server.wait_abandoned(1)  # the server saw it go: the message was never accepted
        smtp_server.release()
        [(job_id, worker_id, status)] = site.sql(
            "SELECT id, worker_id, status FROM procrastinate_jobs"
            " WHERE task_name = 'deliver_portal_email' AND args->>'kind' = 'invitation' AND status = 'doing'"
        )
        assert status == "doing"
        # Deterministic, not a guess: wait until the database itself says the worker stopped beating.
        wait_until(
            lambda: (
                site.sql(
                    "SELECT now() - last_heartbeat > make_interval(secs => %s) "
                    "FROM procrastinate_workers WHERE id = %s",
                    [STALLED_AFTER, worker_id],
                )
                == [(True,)]
            ),
            timeout=30,
            what="the killed worker's heartbeat to go stale",
        )
    finally:
        smtp_server.release()
        first.stop()

    second = site.start("worker", log="second")
    try:
        wait_until(lambda: smtp_server.to("killed@example.com"), timeout=60, what="the retried e-mail", process=second)
        wait_until(lambda: _invitation(site, "killed@example.com")[0] == "sent", timeout=30, what="the invitation sent")
        second.signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0
    finally:
        second.stop()

    assert len(smtp_server.to("killed@example.com")) == 1
    assert _invitation(site, "killed@example.com") == ("sent", 2)  # the killed try counts as an attempt
    # procrastinate counts both runs: the one killed (counted when put back) and the one that ended.
    assert site.sql("SELECT status, attempts FROM procrastinate_jobs WHERE id = %s", [job_id]) == [("succeeded", 2)]
    assert f"job {job_id} (deliver_portal_email) was running on a dead worker: queued again" in second.log()
