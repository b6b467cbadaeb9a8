"""The organization's audit log in the admin: Django's change list over the caller's organizations' events."""

from django.test import Client

from accounts.models import Organization, User
from events.models import AuditEvent
from portals.models import Portal
from tests.conftest import web_client

LIST = "/admin/events/auditevent/"


def _listed(response: object) -> list[AuditEvent]:
    return list(response.context["cl"].result_list)  # type: ignore[attr-defined]


def test_an_admin_sees_its_organizations_events_only(
    owner_web: Client, organization: Organization, portal: Portal, outsider_portal: Portal
) -> None:
    owner_web.post(f"/admin/portals/portal/{portal.pk}/features/", {"feature": "chat", "enabled": "on"})

    page = owner_web.get(LIST)

    assert page.status_code == 200
    assert {event.organization_id for event in _listed(page)} == {organization.id}
    assert [event.action for event in _listed(page)] == ["portal.feature.toggled", "portal.created"]
    assert "Globex" not in page.content.decode() and "globex" not in page.content.decode()
    foreign = AuditEvent.objects.get(portal_id=outsider_portal.id)
    assert owner_web.get(f"{LIST}{foreign.pk}/change/").status_code == 404


def test_it_filters_by_organization_action_and_actor(
    owner_web: Client, owner: User, organization: Organization, portal: Portal
) -> None:
    owner_web.post(f"/admin/portals/portal/{portal.pk}/features/", {"feature": "chat", "enabled": "on"})

    by_org = owner_web.get(f"{LIST}?organization_id={organization.id}")
    by_action = owner_web.get(f"{LIST}?action=portal.created")
    by_actor = owner_web.get(f"{LIST}?actor={owner.email}")

    assert len(_listed(by_org)) == 2
    assert [event.action for event in _listed(by_action)] == ["portal.created"]
    assert [event.action for event in _listed(by_actor)] == ["portal.feature.toggled"]
    assert f"{owner.email} (1)" in by_org.content.decode()  # the actor filter's choice, with its count


def test_events_are_read_only(owner_web: Client, portal: Portal) -> None:
    event = AuditEvent.objects.get(portal_id=portal.id)

    assert owner_web.get(f"{LIST}{event.pk}/change/").status_code == 200
    assert owner_web.post(f"{LIST}{event.pk}/change/", {"action": "x"}).status_code == 403
    assert owner_web.get(f"{LIST}{event.pk}/delete/").status_code == 403
    assert owner_web.get(f"{LIST}add/").status_code == 403


def test_an_operator_sees_every_organization(operator: User, portal: Portal, outsider_portal: Portal) -> None:
    listed = _listed(web_client(operator).get(LIST))
    assert {event.portal_id for event in listed} >= {portal.id, outsider_portal.id}


def test_the_organizations_list_links_its_audit_log(owner_web: Client, organization: Organization) -> None:
    page = owner_web.get("/admin/accounts/organization/").content.decode()
    assert f'href="{LIST}?organization_id={organization.pk}"' in page
