"""Holes found by the trust review (issue 13): each refusal is a 4xx with the contract's body, never a 500."""

import pytest
from rest_framework.test import APIClient

from portals.models import Portal
from tests.conftest import PortalUserLogin

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v1/portal"),
        ("post", "/v1/portal"),
        ("get", "/v1/portal/{portal_id}"),
        ("get", "/v1/portal/{portal_id}/users"),
        ("post", "/v1/portal/{portal_id}/custom-domain/verify"),
    ],
)
def test_a_portal_users_token_on_the_admin_api_is_refused_not_a_500(
    portal: Portal, portal_user: PortalUserLogin, method: str, path: str
) -> None:
    client = APIClient(HTTP_HOST="localhost")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {portal_user.access}", HTTP_X_PORTAL_ID=str(portal.id))

    response = getattr(client, method)(path.format(portal_id=portal.id), {}, format="json")

    assert response.status_code == 403, response.content
    assert response.json() == {"detail": "Only admins of a production organization may manage portals."}
