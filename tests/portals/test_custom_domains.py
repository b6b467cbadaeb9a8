"""Custom domains are proven by a DNS TXT record (a real DNS server on loopback) before they route,
get a certificate or appear in an e-mailed link; `www.x` and `x` are one name."""

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from portals.domain_verification import custom_domains_verify_pending
from portals.models import Domain, Portal
from tests.conftest import bearer_client, publish_challenge, verified_custom_domain
from tests.jobs import run_jobs

pytestmark = pytest.mark.django_db


def _create(client, **body):
    response = client.post("/v1/portal", {"name": "Acme", **body}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def _verify(client, portal):
    return client.post(f"/v1/portal/{portal['id']}/custom-domain/verify")


def _status(client, portal_host):
    return client.get("/healthz", HTTP_HOST=portal_host).status_code


# Pending until proven ------------------------------------------------------------------------


def test_a_new_custom_domain_is_pending_with_a_txt_record_to_publish(owner_api):
    body = _create(owner_api, custom_domain="portal.acme.test")

    assert body["custom_domain"] == "portal.acme.test"
    assert body["custom_domain_status"] == "pending"
    record = body["custom_domain_verification"]
    assert set(record) == {"type", "name", "value", "checked_at", "error"}
    assert (record["type"], record["name"]) == ("TXT", "_portalsite-challenge.portal.acme.test")
    assert len(record["value"]) >= 32  # 24 random bytes, URL-safe
    assert (record["checked_at"], record["error"]) == (None, None)


def test_without_a_custom_domain_there_is_nothing_to_verify(owner_api):
    body = _create(owner_api)

    assert (body["custom_domain"], body["custom_domain_status"], body["custom_domain_verification"]) == (
        None, None, None
    )  # fmt: skip
    assert _verify(owner_api, body).status_code == 404


def test_each_domain_gets_its_own_token_and_setting_the_same_one_again_changes_nothing(owner_api):
    first = _create(owner_api, custom_domain="a.acme.test")
    second = _create(owner_api, name="Other", custom_domain="b.acme.test")
    assert first["custom_domain_verification"]["value"] != second["custom_domain_verification"]["value"]

    again = owner_api.patch(f"/v1/portal/{first['id']}", {"custom_domain": "A.acme.test"}, format="json").json()
    moved = owner_api.patch(f"/v1/portal/{first['id']}", {"custom_domain": "c.acme.test"}, format="json").json()

    assert again["custom_domain_verification"]["value"] == first["custom_domain_verification"]["value"]
    assert moved["custom_domain_status"] == "pending"
    assert moved["custom_domain_verification"]["value"] != first["custom_domain_verification"]["value"]


def test_an_unverified_custom_host_is_a_404_and_the_default_host_answers(owner_api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _create(owner_api, custom_domain="portal.acme.test")

    assert _status(owner_api, "acme.localhost") == 200
    assert _status(owner_api, "portal.acme.test") == 404


def test_verify_finds_the_record_and_the_custom_host_routes_at_once(
    owner_api, dns_zone, django_capture_on_commit_callbacks, django_assert_num_queries
):
    with django_capture_on_commit_callbacks(execute=True):
        body = _create(owner_api, custom_domain="portal.acme.test")
    assert _status(owner_api, "portal.acme.test") == 404  # "no portal here" is remembered briefly...
    publish_challenge(dns_zone, body)

    with (
        django_capture_on_commit_callbacks(execute=True),
        django_assert_num_queries(
            12,
            info="auth, portal, domain, lock+update (savepoint), the portal.custom_domain.verified event (chain "
            "head, insert, its webhook deliveries: none), portal's domains, user count",
        ),
    ):
        response = _verify(owner_api, body)

    assert response.status_code == 200
    verified = response.json()
    assert verified["custom_domain_status"] == "verified"
    assert verified["custom_domain_verification"]["error"] is None
    assert verified["custom_domain_verification"]["checked_at"] is not None
    assert _status(owner_api, "portal.acme.test") == 200  # ...and forgotten once proven
    assert dns_zone.queries == ["_portalsite-challenge.portal.acme.test"]


@pytest.mark.parametrize(
    ("publish", "error"),
    [
        ("nothing", r"_portalsite-challenge\.portal\.acme\.test does not exist \(NXDOMAIN\)"),
        ("other-value", r"has TXT 'someone-elses-token', not the expected value"),
        ("no-txt", r"exists but has no TXT record"),
        ("silent", r"timed out after 0\.5 s"),
    ],
    ids=["nxdomain", "wrong-value", "no-txt", "timeout"],
)
def test_verify_reports_what_it_found_and_stays_pending(owner_api, dns_zone, publish, error):
    body = _create(owner_api, custom_domain="portal.acme.test")
    name = body["custom_domain_verification"]["name"]
    if publish == "other-value":
        dns_zone.txt[name] = ["someone-elses-token"]
    elif publish == "no-txt":
        dns_zone.no_txt.add(name)
    elif publish == "silent":
        dns_zone.silent.add(name)

    response = _verify(owner_api, body)

    assert response.status_code == 200
    result = response.json()
    assert result["custom_domain_status"] == "pending"
    assert re.search(error, result["custom_domain_verification"]["error"]), result["custom_domain_verification"]
    assert result["custom_domain_verification"]["checked_at"] is not None
    assert _status(owner_api, "portal.acme.test") == 404


def test_a_record_among_others_still_verifies(owner_api, dns_zone):
    body = _create(owner_api, custom_domain="portal.acme.test")
    record = body["custom_domain_verification"]
    dns_zone.txt[record["name"]] = ["v=spf1 -all", record["value"]]

    assert _verify(owner_api, body).json()["custom_domain_status"] == "verified"


def test_verify_is_404_outside_the_callers_organization(owner_api, make_org_user, dns_zone):
    body = _create(owner_api, custom_domain="portal.acme.test")
    publish_challenge(dns_zone, body)

    assert _verify(bearer_client(make_org_user()), body).status_code == 404
    assert Domain.objects.get(domain="portal.acme.test").verification_status == "pending"


# Links in e-mails --------------------------------------------------------------------------


def _invitation_link(client, portal_id: str, email: str, django_capture_on_commit_callbacks) -> str:
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/v1/portal/{portal_id}/users", {"users": [{"email": email}]}, format="json")
    assert response.status_code == 201, response.content
    run_jobs(queues=["email"])  # the invitation e-mail is a job
    [message] = mail.outbox
    return re.search(r"https?://\S+/invite/\S+", message.body).group(0)


def test_emails_link_to_the_default_domain_until_the_custom_one_is_verified(
    owner_api, dns_zone, django_capture_on_commit_callbacks
):
    body = _create(owner_api, custom_domain="portal.acme.test")

    pending_link = _invitation_link(owner_api, body["id"], "first@example.com", django_capture_on_commit_callbacks)
    verified_custom_domain(owner_api, dns_zone, body)
    verified_link = _invitation_link(owner_api, body["id"], "second@example.com", django_capture_on_commit_callbacks)

    assert pending_link.startswith("http://acme.localhost:8000/invite/")
    assert verified_link.startswith("http://portal.acme.test:8000/invite/")


# The background check and the command --------------------------------------------------------


def test_the_pending_check_verifies_published_records_and_fails_stale_ones(owner_api, dns_zone, settings):
    published = _create(owner_api, name="Published", custom_domain="published.acme.test")
    waiting = _create(owner_api, name="Waiting", custom_domain="waiting.acme.test")
    stale = _create(owner_api, name="Stale", custom_domain="stale.acme.test")
    publish_challenge(dns_zone, published)
    Domain.objects.filter(domain="stale.acme.test").update(
        verification_started_at=timezone.now() - settings.DOMAIN_VERIFY_TIMEOUT - timedelta(minutes=1)
    )

    summary = custom_domains_verify_pending()

    assert (summary.checked, summary.verified, summary.failed, summary.still_pending) == (
        3, ["published.acme.test"], ["stale.acme.test"], ["waiting.acme.test"]
    )  # fmt: skip
    states = dict(Domain.objects.filter(is_custom=True).values_list("domain", "verification_status"))
    assert states == {
        "published.acme.test": "verified", "waiting.acme.test": "pending", "stale.acme.test": "failed"
    }  # fmt: skip
    failed = owner_api.get(f"/v1/portal/{stale['id']}").json()
    assert failed["custom_domain_status"] == "failed"
    assert failed["custom_domain_verification"]["error"].startswith("Not verified within 7 days.")
    assert custom_domains_verify_pending().checked == 1  # only the one still pending is looked up again
    assert waiting["id"]


def test_the_periodic_job_checks_pending_domains_every_domain_check_interval(owner_api, dns_zone, settings):
    from portalsite.jobs import app
    from portalsite.settings import _cron_every

    published = _create(owner_api, name="Published", custom_domain="published.acme.test")
    publish_challenge(dns_zone, published)

    app.tasks["custom_domains_check"].defer(timestamp=0)
    [run] = [run for run in run_jobs() if run.task_name == "custom_domains_check"]

    assert run.status == "succeeded"
    assert Domain.objects.get(domain="published.acme.test").verification_status == "verified"
    assert settings.PERIODIC_JOBS["custom_domains_check"] == "*/5 * * * *"  # DOMAIN_CHECK_INTERVAL=300
    assert [_cron_every(seconds, "X") for seconds in (30, 60, 3600, 21600)] == [
        "* * * * * */30", "*/1 * * * *", "0 */1 * * *", "0 */6 * * *"
    ]  # fmt: skip
    with pytest.raises(ImproperlyConfigured, match=r"^X=420: "):
        _cron_every(420, "X")


def test_a_failed_domain_can_still_be_verified_by_hand(owner_api, dns_zone):
    body = _create(owner_api, custom_domain="late.acme.test")
    Domain.objects.filter(domain="late.acme.test").update(verification_status="failed")
    publish_challenge(dns_zone, body)

    assert _verify(owner_api, body).json()["custom_domain_status"] == "verified"


def test_a_lookup_for_a_domain_that_changed_meanwhile_is_not_recorded(owner_api, dns_zone):
    body = _create(owner_api, custom_domain="old.acme.test")
    publish_challenge(dns_zone, body)
    old = Domain.objects.get(domain="old.acme.test")

    from portals.domain_verification import _record_check

    owner_api.patch(f"/v1/portal/{body['id']}", {"custom_domain": "new.acme.test"}, format="json")
    recorded = _record_check(domain_id=old.pk, token=old.verification_token, error="", now=timezone.now(),
                             fail_stale=False)  # fmt: skip

    assert recorded is None
    assert Domain.objects.get(tenant_id=body["id"], is_custom=True).verification_status == "pending"


def test_verify_domains_command_checks_pending_domains_of_one_portal_or_all(owner_api, dns_zone):
    first = _create(owner_api, name="First", custom_domain="first.acme.test")
    second = _create(owner_api, name="Second", custom_domain="second.acme.test")
    publish_challenge(dns_zone, first)
    publish_challenge(dns_zone, second)

    out = StringIO()
    call_command("verify_domains", "--portal", first["slug"], stdout=out)
    assert "first.acme.test: verified" in out.getvalue()
    assert Domain.objects.get(domain="second.acme.test").verification_status == "pending"

    out = StringIO()
    call_command("verify_domains", stdout=out)
    assert "second.acme.test: verified" in out.getvalue()
    assert "1 checked: 1 verified, 0 failed, 0 still pending" in out.getvalue()

    with pytest.raises(CommandError, match="No portal 'nope'"):
        call_command("verify_domains", "--portal", "nope")


def test_create_portal_command_sets_a_pending_custom_domain(owner):
    out = StringIO()
    call_command(
        "create_portal", "--org", str(owner.organizations.get().id), "--name", "Cli", "--custom-domain",
        "cli.acme.test", stdout=out, stderr=StringIO(),
    )  # fmt: skip

    domain = Domain.objects.get(domain="cli.acme.test")
    assert str(domain.tenant_id) == out.getvalue().strip()
    assert domain.verification_status == "pending" and domain.verification_token


# www. is the same name; routing is by exact host -----------------------------------------------


@pytest.mark.parametrize(("first", "second"), [("shop.test", "www.shop.test"), ("www.shop.test", "shop.test")])
def test_a_host_and_its_www_twin_cannot_belong_to_two_portals(owner_api, make_org_user, first, second):
    _create(owner_api, custom_domain=first)
    other = bearer_client(make_org_user())

    created = other.post("/v1/portal", {"name": "Other", "custom_domain": second}, format="json")
    portal = other.post("/v1/portal", {"name": "Other"}, format="json").json()
    updated = other.patch(f"/v1/portal/{portal['id']}", {"custom_domain": second}, format="json")

    for response in (created, updated):
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "custom_domain"]


def test_the_database_refuses_a_www_twin_too(owner_api):
    body = _create(owner_api, custom_domain="shop.test")

    with pytest.raises(IntegrityError, match="portals_domain_www_twin_unique"), transaction.atomic():
        Domain.objects.create(domain="www.shop.test", tenant_id=body["id"], is_custom=True)


def test_a_www_host_routes_to_the_portal_that_registered_exactly_it(
    owner_api, dns_zone, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        verified_custom_domain(owner_api, dns_zone, _create(owner_api, custom_domain="www.shop.test"))

    response = owner_api.get("/healthz", HTTP_HOST="www.shop.test")
    assert response.status_code == 200
    assert response.wsgi_request.tenant.slug == "acme"
    assert _status(owner_api, "shop.test") == 404  # django-tenants would have stripped www. here
    assert _status(owner_api, "www.acme.localhost") == 404


# The TLS terminator's question ----------------------------------------------------------------


def _ask(client, domain, host="localhost"):
    return client.get("/internal/tls-ask", {"domain": domain}, HTTP_HOST=host)


def test_tls_ask_allows_default_and_verified_domains_only(
    api_client, owner_api, dns_zone, django_assert_num_queries, test_portal
):
    verified = _create(owner_api, name="Verified", custom_domain="verified.acme.test")
    verified_custom_domain(owner_api, dns_zone, verified)
    _create(owner_api, name="Pending", custom_domain="pending.acme.test")
    spare = Portal.objects.filter(is_spare=True).first()

    with django_assert_num_queries(1, info="one indexed domain lookup"):
        assert _ask(api_client, "verified.acme.test").status_code == 200
    assert _ask(api_client, "VERIFIED.acme.test.").status_code == 200
    assert _ask(api_client, "verified.localhost").status_code == 200
    assert _ask(api_client, "test.localhost").status_code == 200
    for refused in ("pending.acme.test", "unknown.example.com", "localhost", f"{spare.slug}.localhost", "", "x" * 300):
        assert _ask(api_client, refused).status_code == 404, refused
    assert api_client.get("/internal/tls-ask", HTTP_HOST="localhost").status_code == 404
    assert _ask(api_client, "test.localhost", host="test.localhost").status_code == 404  # main hosts only


# Caches ---------------------------------------------------------------------------------------


def test_unknown_hosts_are_remembered_in_process_only(api_client):
    assert _status(api_client, "nobody.example.com") == 404

    assert caches["routing"].get("host:nobody.example.com") is None
