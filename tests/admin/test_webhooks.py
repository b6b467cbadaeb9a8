"""Webhook endpoints and deliveries in the admin: read-only, the caller's organizations' only, never the secret."""

from django.test import Client

from accounts.models import Organization
from events.webhook_models import WebhookDelivery
from events.webhook_services import webhook_endpoint_create, webhook_endpoint_test
from tests.webhook_receiver import WebhookReceiver

ENDPOINTS, DELIVERIES = "/admin/events/webhookendpoint/", "/admin/events/webhookdelivery/"


def test_an_admin_sees_its_organizations_endpoints_and_deliveries_only_and_never_a_secret(
    owner_web: Client, organization: Organization, outsider_organization: Organization, receiver: WebhookReceiver
) -> None:
    mine = webhook_endpoint_create(organization=organization, url=receiver.url("/acme"))
    theirs = webhook_endpoint_create(organization=outsider_organization, url=receiver.url("/globex"))
    webhook_endpoint_test(endpoint=mine)
    webhook_endpoint_test(endpoint=theirs)

    listed = owner_web.get(ENDPOINTS)
    page = owner_web.get(f"{ENDPOINTS}{mine.pk}/change/")
    deliveries = owner_web.get(DELIVERIES)

    assert [endpoint.pk for endpoint in listed.context["cl"].result_list] == [mine.pk]
    assert page.status_code == 200 and mine.url in page.content.decode()
    assert mine.secret not in page.content.decode() and mine.secret not in listed.content.decode()
    assert owner_web.get(f"{ENDPOINTS}{theirs.pk}/change/").status_code == 404
    assert {delivery.endpoint_id for delivery in deliveries.context["cl"].result_list} == {mine.pk}
    foreign = WebhookDelivery.objects.filter(endpoint=theirs).first()
    assert foreign is not None
    assert owner_web.get(f"{DELIVERIES}{foreign.pk}/change/").status_code == 404
    assert owner_web.post(f"{ENDPOINTS}{mine.pk}/delete/").status_code == 403
