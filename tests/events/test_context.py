"""Who did it and through what: each interface sets the context its events are recorded with."""

from django.test import Client
from rest_framework.test import APIClient

from accounts.models import Organization, User
from events.models import AuditEvent
from portals.models import Portal
from tests.conftest import PortalUserLogin, portal_login, run_command


def _last(action: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).latest("occurred_at", "seq")


def test_an_api_call_records_the_account_its_address_agent_and_request_id(
    owner_api: APIClient, portal: Portal, owner: User
) -> None:
    response = owner_api.patch(
        f"/v1/portal/{portal.id}",
        {"name": "Acme Customers"},
        format="json",
        REMOTE_ADDR="203.0.113.9",
        HTTP_USER_AGENT="crm-sync/2.1",
        HTTP_X_REQUEST_ID="req-42",
    )

    assert response.status_code == 200, response.content
    event = _last("portal.updated")
    assert (event.via, event.actor_type, event.actor_id, event.actor_email) == (
        "api",
        "user",
        str(owner.id),
        owner.email,
    )
    assert (event.ip_address, event.user_agent, event.request_id) == ("203.0.113.9", "crm-sync/2.1", "req-42")
    assert response["X-Request-ID"] == "req-42"
    assert event.changes == {"name": ["Acme", "Acme Customers"]}
    assert (event.organization_id, event.portal_id, event.target_type, event.target_id) == (
        portal.organization_id,
        portal.id,
        "portal",
        str(portal.id),
    )


def test_an_admin_page_records_via_admin(
    owner_web: Client, organization: Organization, owner: User, spare_pool: None
) -> None:
    response = owner_web.post(
        "/admin/portals/portal/add/", {"organization": organization.pk, "name": "Acme Support", "slug": ""}
    )

    assert response.status_code == 302
    event = _last("portal.created")
    assert (event.via, event.actor_type, event.actor_email, event.organization_id) == (
        "admin",
        "user",
        owner.email,
        organization.id,
    )


def test_a_command_records_the_operator(organization: Organization, spare_pool: None) -> None:
    run_command("create_portal", "--org", organization.slug, "--name", "From the shell")

    event = _last("portal.created")
    assert (event.via, event.actor_type, event.actor_id, event.actor_email) == ("cli", "operator", "", "")


def test_a_portal_users_token_records_that_portal_user(portal_user: PortalUserLogin) -> None:
    response = portal_user.client.post("/v1/auth/logout", {"refresh": portal_user.refresh}, format="json")

    assert response.status_code == 200
    event = _last("session.ended")
    assert (event.via, event.actor_type, event.actor_id, event.actor_email) == (
        "api",
        "portal_user",
        str(portal_user.member.id),
        portal_user.member.email,
    )


def test_a_portal_login_is_the_portal_users_own(portal_user: PortalUserLogin) -> None:
    event = _last("session.created")
    assert (event.actor_type, event.actor_id, event.via) == ("portal_user", str(portal_user.member.id), "api")


def test_accepting_on_the_portal_page_records_via_portal_as_the_new_portal_user(
    portal: Portal, portal_host: str
) -> None:
    from django_tenants.utils import tenant_context

    from customer_portal.emails import invitation_token
    from customer_portal.models import Invitation
    from tests.conftest import invite

    invite(portal, "nadia@customer.test")
    with tenant_context(portal):
        invitation = Invitation.objects.select_related("portal_user").get()
    token = invitation_token(invitation_id=invitation.id, delivery_key=invitation.delivery_key)
    password = "plum orchard lantern 1987"

    response = Client(HTTP_HOST=portal_host).post(
        f"/invite/{token}",
        {"name": "Nadia", "password": password, "password_confirm": password},
        REMOTE_ADDR="198.51.100.4",
    )

    assert response.status_code == 200
    events = AuditEvent.objects.filter(portal_id=portal.id, via="portal").order_by("seq")
    assert [(e.action, e.actor_type, e.actor_id, e.ip_address) for e in events] == [
        ("session.created", "portal_user", str(invitation.portal_user.id), "198.51.100.4"),
        ("invitation.accepted", "portal_user", str(invitation.portal_user.id), "198.51.100.4"),
    ]  # the session opened by accepting stays: it signs the browser in


def test_logging_out_everywhere_is_the_accounts_own_doing(portal_user: PortalUserLogin, portal_host: str) -> None:
    status, _ = portal_login(portal_host, portal_user.account.email)  # a second session, elsewhere
    assert status == 200

    response = APIClient(HTTP_HOST="localhost").post(
        "/v1/auth/logout", {"refresh": portal_user.refresh, "everywhere": True}, format="json"
    )

    assert response.status_code == 200
    ended = AuditEvent.objects.filter(action="session.ended").order_by("seq")
    assert [(event.actor_type, event.actor_id) for event in ended] == [
        ("portal_user", str(portal_user.member.id)),  # the token's own session: its portal user logged out
        ("user", str(portal_user.account.id)),  # the other one: the account signed out everywhere
    ]
