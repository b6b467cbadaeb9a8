"""One portal's pages: users, invitations, features, settings, live sessions and its audit log; each change
through a service, reported with the messages framework and recorded (by the service) in the audit trail."""

from collections.abc import Callable

import pytest
from django.contrib.messages import get_messages
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django_tenants.utils import tenant_context

from accounts.models import User
from customer_portal.admin_views import PAGE_SIZE
from customer_portal.invite_rows import InviteEntry
from customer_portal.models import Feature, Invitation, PortalSession, PortalSettings, PortalUser
from customer_portal.services import portal_config_update, portal_session_open, portal_users_invite
from events.models import AuditEvent
from portals.models import Portal
from tests.conftest import invite
from tests.factories import UserFactory
from tests.jobs import run_jobs
from tests.smtp import SmtpServer


@pytest.fixture
def url(portal: Portal) -> Callable[[str], str]:
    return lambda page: f"/admin/portals/portal/{portal.pk}/{page}/"


def _messages(response: object) -> list[str]:
    """The messages this request added (earlier unread ones wait in the cookie too)."""
    storage = get_messages(response.wsgi_request)  # type: ignore[attr-defined]
    return [str(message) for message in storage._queued_messages]


def _admin_events(portal: Portal) -> list[tuple[str, str]]:
    """What the admin's pages recorded in the portal's audit trail: (action, target label) in order."""
    events = AuditEvent.objects.filter(portal_id=portal.pk, via="admin").order_by("seq")
    return list(events.values_list("action", "target_label"))


def _users(portal: Portal) -> dict[str, str]:
    with tenant_context(portal):
        return dict(PortalUser.objects.values_list("email", "status"))


# Invite ------------------------------------------------------------------------------------------


def test_pasting_three_emails_invites_three_people(
    owner_web: Client, portal: Portal, url: Callable[[str], str], django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_web.post(
            url("invite"),
            {"emails": "ann@example.com\nbob@example.com, Bob Stone, manager\n\ncid@example.com", "send_email": "on"},
        )
    run_jobs()  # the e-mail jobs the change queued

    assert response.status_code == 302 and response.url == url("users")
    assert _users(portal) == dict.fromkeys(["ann@example.com", "bob@example.com", "cid@example.com"], "invited")
    with tenant_context(portal):
        bob = PortalUser.objects.get(email="bob@example.com")
    assert (bob.name, bob.role) == ("Bob Stone", "manager")
    assert _messages(response) == ["Invited 3 people: 3 invited, 0 linked to existing accounts, 0 already members."]
    assert _admin_events(portal) == [
        ("portal_user.invited", "ann@example.com"),
        ("portal_user.invited", "bob@example.com"),
        ("portal_user.invited", "cid@example.com"),
    ]
    assert sorted(message.to[0] for message in mail.outbox) == ["ann@example.com", "bob@example.com", "cid@example.com"]


def test_an_account_holder_is_linked_and_a_member_is_already_one(
    owner_web: Client, portal: Portal, url: Callable[[str], str]
) -> None:
    UserFactory(email="has-account@example.com")
    invite(portal, "member@example.com")

    response = owner_web.post(url("invite"), {"emails": "has-account@example.com\nmember@example.com"})

    assert _messages(response) == ["Invited 1 person: 0 invited, 1 linked to existing accounts, 1 already members."]
    assert _users(portal)["has-account@example.com"] == "active"


def test_a_csv_upload_invites_its_rows(owner_web: Client, portal: Portal, url: Callable[[str], str]) -> None:
    upload = SimpleUploadedFile(
        "people.csv", "\ufeffname,email,role\nDee,dee@example.com,manager\n,eve@example.com,\n".encode(), "text/csv"
    )

    response = owner_web.post(url("invite"), {"csv_file": upload})

    assert response.status_code == 302
    with tenant_context(portal):
        assert list(PortalUser.objects.order_by("email").values_list("email", "name", "role")) == [
            ("dee@example.com", "Dee", "manager"),
            ("eve@example.com", "", "member"),
        ]


def test_bad_rows_are_reported_by_line_and_nobody_is_invited(
    owner_web: Client, portal: Portal, url: Callable[[str], str]
) -> None:
    response = owner_web.post(url("invite"), {"emails": "ok@example.com\nnot-an-email\nx@example.com,X,owner"})

    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() == [
        "Line 2: 'not-an-email' is not a valid e-mail address",
        "Line 3: role 'owner' is not one of member, manager",
    ]
    assert _users(portal) == {}
    assert _admin_events(portal) == []


def test_an_empty_invite_is_refused(owner_web: Client, portal: Portal, url: Callable[[str], str]) -> None:
    response = owner_web.post(url("invite"), {"emails": "  \n"})

    assert response.context["adminform"].form.non_field_errors() == [
        "Paste at least one e-mail address or choose a CSV file."
    ]


def test_the_services_domain_rule_comes_back_on_the_offending_line(
    owner_web: Client, portal: Portal, url: Callable[[str], str]
) -> None:
    with tenant_context(portal):
        portal_config_update(allowed_email_domains=["acme.test"])

    response = owner_web.post(url("invite"), {"emails": "ok@acme.test\nout@elsewhere.test"})

    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() == [
        "Line 2 (out@elsewhere.test): Only addresses at acme.test may be invited."
    ]
    assert _users(portal) == {}


# Users -------------------------------------------------------------------------------------------


def test_the_users_page_counts_searches_filters_and_paginates(
    owner_web: Client, portal: Portal, url: Callable[[str], str]
) -> None:
    invite(portal, *[f"user{n:03}@example.com" for n in range(PAGE_SIZE + 5)], "zed@other.test")
    with tenant_context(portal):
        PortalUser.objects.filter(email="zed@other.test").update(status=PortalUser.Status.REVOKED)

    first = owner_web.get(url("users"))
    second = owner_web.get(url("users") + "?p=2")
    search = owner_web.get(url("users") + "?q=other.test")
    revoked = owner_web.get(url("users") + "?status=revoked")
    beyond = owner_web.get(url("users") + "?p=99")

    assert len(first.context["users"]) == PAGE_SIZE and first.context["page"].paginator.count == PAGE_SIZE + 6
    assert len(second.context["users"]) == 6
    assert [user.email for user in search.context["users"]] == ["zed@other.test"]
    assert [user.email for user in revoked.context["users"]] == ["zed@other.test"]
    assert beyond.context["page"].number == 2 and len(beyond.context["users"]) == 6
    page = first.content.decode()
    assert "Invited (55)" in page and "Revoked (1)" in page and "All (56)" in page


def _ids(portal: Portal, *emails: str) -> list[str]:
    with tenant_context(portal):
        return [str(pk) for pk in PortalUser.objects.filter(email__in=emails).values_list("id", flat=True)]


def test_revoke_then_restore(owner_web: Client, portal: Portal, url: Callable[[str], str]) -> None:
    invite(portal, "ann@example.com", "bob@example.com")

    revoked = owner_web.post(url("users"), {"action": "revoke", "_selected_action": _ids(portal, "bob@example.com")})
    assert _users(portal) == {"ann@example.com": "invited", "bob@example.com": "revoked"}
    restored = owner_web.post(
        url("users"), {"action": "restore", "_selected_action": _ids(portal, "ann@example.com", "bob@example.com")}
    )

    assert _users(portal) == {"ann@example.com": "invited", "bob@example.com": "invited"}
    assert _messages(revoked) == ["Revoked access of 1 person: bob@example.com."]
    assert _messages(restored) == [
        "Restored access of 1 person (1 invited again, 0 active again).",
        "1 person already had access; nothing changed for them.",
    ]
    assert _admin_events(portal) == [
        ("portal_user.access_revoked", "bob@example.com"),
        ("portal_user.restored", "bob@example.com"),
    ]


def test_remove_asks_first_then_deletes_the_membership(
    owner_web: Client, portal: Portal, url: Callable[[str], str]
) -> None:
    invite(portal, "ann@example.com", "bob@example.com")
    selected = _ids(portal, "bob@example.com")

    confirm = owner_web.post(url("users"), {"action": "remove", "_selected_action": selected})
    assert confirm.status_code == 200 and "Yes, remove them" in confirm.content.decode()
    assert "bob@example.com" in confirm.content.decode() and "ann@example.com" not in confirm.content.decode()
    assert _users(portal) == {"ann@example.com": "invited", "bob@example.com": "invited"}

    done = owner_web.post(url("users"), {"action": "remove", "confirm": "yes", "_selected_action": selected})

    assert done.status_code == 302
    assert _users(portal) == {"ann@example.com": "invited"}
    assert _admin_events(portal) == [("portal_user.removed", "bob@example.com")]


def test_an_action_without_a_selection_changes_nothing(
    owner_web: Client, portal: Portal, url: Callable[[str], str]
) -> None:
    invite(portal, "ann@example.com")

    response = owner_web.post(url("users"), {"action": "revoke"})

    assert "Items must be selected" in _messages(response)[0]
    assert _users(portal) == {"ann@example.com": "invited"}


# Invitations -------------------------------------------------------------------------------------


def test_invitations_resend_and_revoke(
    owner_web: Client, portal: Portal, url: Callable[[str], str], django_capture_on_commit_callbacks
) -> None:
    invite(portal, "ann@example.com", "bob@example.com")
    with tenant_context(portal):
        ann, bob = (
            str(Invitation.objects.get(portal_user__email=email).id) for email in ("ann@example.com", "bob@example.com")
        )
        old_hash = Invitation.objects.get(id=ann).token_hash

    listed = owner_web.get(url("invitations"))
    with django_capture_on_commit_callbacks(execute=True):
        resent = owner_web.post(url("invitations"), {"action": "resend", "_selected_action": [ann]})
    run_jobs()  # the e-mail jobs the change queued
    revoked = owner_web.post(url("invitations"), {"action": "revoke", "_selected_action": [bob]})
    again = owner_web.post(url("invitations"), {"action": "resend", "_selected_action": [bob]})

    assert sorted(invitation.portal_user.email for invitation in listed.context["invitations"]) == [
        "ann@example.com",
        "bob@example.com",
    ]
    assert _messages(resent) == ["Resent 1 invitation: ann@example.com."]
    assert [message.to for message in mail.outbox] == [["ann@example.com"]]
    assert _messages(revoked) == ["Revoked 1 invitation: bob@example.com."]
    assert _messages(again) == ["A revoked invitation cannot be resent. (1 not changed)"]
    with tenant_context(portal):
        assert Invitation.objects.get(id=ann).token_hash != old_hash
        assert Invitation.objects.get(id=bob).status == Invitation.Status.REVOKED
    assert _users(portal)["bob@example.com"] == "revoked"
    assert [
        invitation.portal_user.email for invitation in owner_web.get(url("invitations")).context["invitations"]
    ] == ["ann@example.com"]
    assert _admin_events(portal) == [
        ("invitation.resent", "ann@example.com"),
        ("invitation.revoked", "bob@example.com"),
    ]


def test_the_invitations_page_shows_each_emails_fate_and_filters_the_failed(
    owner_web: Client, portal: Portal, url: Callable[[str], str], smtp: SmtpServer
) -> None:
    smtp.refuse("bounce@example.com")
    with tenant_context(portal):
        portal_users_invite(
            portal=portal,
            entries=[InviteEntry(email=email) for email in ("ok@example.com", "bounce@example.com")],
            invited_by=None,
        )
    run_jobs(queues=["email"])
    invite(portal, "quiet@example.com")  # not e-mailed
    with tenant_context(portal):
        portal_users_invite(portal=portal, entries=[InviteEntry(email="later@example.com")], invited_by=None)

    everything = owner_web.get(url("invitations")).content.decode()
    failed = owner_web.get(url("invitations"), {"delivery": "failed", "status": "all"})

    assert "Not e-mailed" in everything and "Queued" in everything and "Sent" in everything
    assert [invitation.portal_user.email for invitation in failed.context["invitations"]] == ["bounce@example.com"]
    page = failed.content.decode()
    assert "550 5.1.1 &lt;bounce@example.com&gt;: Recipient address rejected" in page
    assert [(item["label"], item["count"], item["selected"]) for item in failed.context["delivery_filters"]] == [
        ("Any", 3, False),
        ("Queued", 1, False),
        ("Sent", 1, False),
        ("Failed", 1, True),
    ]
    # Choosing a status keeps the e-mail filter, and the other way round.
    assert "delivery=failed" in next(item["query"] for item in failed.context["status_filters"])
    assert "status=all" in failed.context["delivery_filters"][0]["query"]


def test_the_users_page_shows_a_linked_accounts_access_email(
    owner_web: Client, portal: Portal, url: Callable[[str], str], smtp: SmtpServer
) -> None:
    UserFactory(email="known@example.com")
    smtp.refuse("known@example.com")
    with tenant_context(portal):
        portal_users_invite(portal=portal, entries=[InviteEntry(email="known@example.com")], invited_by=None)
    run_jobs(queues=["email"])

    page = owner_web.get(url("users")).content.decode()

    assert "Access e-mail" in page
    assert "Failed" in page and "Recipient address rejected" in page


# Features ----------------------------------------------------------------------------------------


def test_toggling_a_feature(owner_web: Client, portal: Portal, url: Callable[[str], str]) -> None:
    page = owner_web.get(url("features")).content.decode()
    on = owner_web.post(url("features"), {"feature": "chat", "enabled": "on"})
    off = owner_web.post(url("features"), {"feature": "documents", "enabled": "off"})
    unknown = owner_web.post(url("features"), {"feature": "nope", "enabled": "on"})

    assert "Live chat between portal users and your team." in page
    with tenant_context(portal):
        assert dict(Feature.objects.filter(key__in=["chat", "documents"]).values_list("key", "enabled")) == {
            "chat": True,
            "documents": False,
        }
    assert _messages(on) == ["Turned on Chat."] and _messages(off) == ["Turned off Documents."]
    assert _messages(unknown) == ["There is no feature 'nope' in this portal."]
    assert _admin_events(portal) == [("portal.feature.toggled", "Chat"), ("portal.feature.toggled", "Documents")]


# Settings ----------------------------------------------------------------------------------------

SETTINGS = {
    "display_name": "Acme Customers",
    "logo_url": "https://acme.test/logo.png",
    "primary_color": "#AA3300",
    "welcome_message": "Hello",
    "support_email": "help@acme.test",
    "allowed_email_domains": "Acme.test\n@partner.test, acme.test",
    "session_timeout_minutes": "90",
}


def test_settings_are_saved_through_the_service(owner_web: Client, portal: Portal, url: Callable[[str], str]) -> None:
    response = owner_web.post(url("settings"), SETTINGS)

    assert response.status_code == 302
    with tenant_context(portal):
        saved = PortalSettings.objects.get(id=1)
    assert (saved.display_name, saved.primary_color, saved.allowed_email_domains, saved.session_timeout_minutes) == (
        "Acme Customers",
        "#aa3300",
        ["acme.test", "partner.test"],
        90,
    )
    assert _admin_events(portal) == [("portal.config.updated", "settings")]
    # The page shows the portal's colour, and saving the same values again changes nothing.
    assert "--portal-color: #aa3300" in owner_web.get(url("settings")).content.decode()
    again = owner_web.post(url("settings"), {**SETTINGS, "primary_color": "#aa3300"})
    assert _messages(again)[-1] == "Nothing changed."
    assert len(_admin_events(portal)) == 1


def test_invalid_settings_are_form_errors_and_nothing_is_saved(
    owner_web: Client, portal: Portal, url: Callable[[str], str]
) -> None:
    response = owner_web.post(
        url("settings"),
        {
            **SETTINGS,
            "logo_url": "ftp://acme.test/logo.png",
            "primary_color": "red",
            "allowed_email_domains": "acme.test\nnot a domain",
            "session_timeout_minutes": "1",
        },
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"logo_url", "primary_color", "allowed_email_domains", "session_timeout_minutes"}
    assert errors["allowed_email_domains"] == ["not a domain: Enter a domain such as example.com."]
    with tenant_context(portal):
        assert PortalSettings.objects.get(id=1).display_name == "Acme"
    assert _admin_events(portal) == []


# Sessions ----------------------------------------------------------------------------------------


def test_ending_a_live_session(owner_web: Client, portal: Portal, url: Callable[[str], str]) -> None:
    account = UserFactory(email="pat@example.com")
    invite(portal, account.email)
    with tenant_context(portal):
        session = portal_session_open(user=account, ip_address="192.0.2.7", user_agent="pytest browser")

    listed = owner_web.get(url("sessions"))
    ended = owner_web.post(url("sessions"), {"session": str(session.id)})
    twice = owner_web.post(url("sessions"), {"session": str(session.id)})
    garbage = owner_web.post(url("sessions"), {"session": "not-a-uuid"})

    assert [item.id for item in listed.context["sessions"]] == [session.id]
    assert "192.0.2.7" in listed.content.decode()
    assert _messages(ended) == ["Ended the session of pat@example.com; they must log in again."]
    assert _messages(twice) == _messages(garbage) == ["That session had already ended."]
    with tenant_context(portal):
        assert PortalSession.objects.get(id=session.id).ended_at is not None
    assert owner_web.get(url("sessions")).context["sessions"] == []
    assert _admin_events(portal) == [("session.ended", "pat@example.com")]


def test_the_audit_tab_lists_the_portals_trail_filtered_by_action_and_actor(
    owner_web: Client, owner: User, portal: Portal, url: Callable[[str], str]
) -> None:
    owner_web.post(url("features"), {"feature": "chat", "enabled": "on"})
    invite(portal, "ann@example.com")  # not through the admin: no actor e-mail

    page = owner_web.get(url("audit"))
    toggles = owner_web.get(url("audit") + "?action=portal.feature.toggled")
    by_owner = owner_web.get(url("audit") + f"?actor={owner.email.upper()}")
    nobody = owner_web.get(url("audit") + "?actor=nobody@example.com")

    assert page.status_code == 200
    assert [event.action for event in page.context["events"]] == [
        "portal_user.invited",
        "portal.feature.toggled",
        "portal.created",
    ]
    assert 'aria-current="page">Audit log' in page.content.decode()
    assert "enabled: False &rarr; True" in page.content.decode()
    assert [event.action for event in toggles.context["events"]] == ["portal.feature.toggled"]
    assert [item["label"] for item in page.context["status_filters"]] == [
        "All", "portal.created", "portal.feature.toggled", "portal_user.invited"
    ]  # fmt: skip
    assert [event.action for event in by_owner.context["events"]] == ["portal.feature.toggled"]
    assert list(nobody.context["events"]) == []


def test_the_audit_tab_shows_no_other_portals_events(
    owner_web: Client, portal: Portal, outsider_portal: Portal, url: Callable[[str], str]
) -> None:
    page = owner_web.get(url("audit")).content.decode()
    foreign = owner_web.get(f"/admin/portals/portal/{outsider_portal.pk}/audit/")

    assert "globex" not in page.lower()
    assert foreign.status_code == 404
