from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from portals.models import Domain, Portal

MAIN_HOST = "localhost"
TEST_PORTAL_HOST = "test.localhost"


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    cache.clear()  # throttling counters must not leak between tests
    yield
    connection.set_schema_to_public()


@pytest.fixture
def api_client() -> APIClient:
    """A client on the main host (the public schema)."""
    return APIClient(HTTP_HOST=MAIN_HOST)


@pytest.fixture(scope="session")
def test_portal(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> Portal:
    """One migrated portal schema for the whole session; each test rolls its rows back."""
    with django_db_blocker.unblock():  # committed once; get_or_create keeps --reuse-db working
        portal, _ = Portal.objects.get_or_create(
            schema_name="portal_test", defaults={"name": "Test portal", "slug": "test"}
        )
        portal.create_schema(check_if_exists=True, verbosity=0)
        Domain.objects.get_or_create(domain=TEST_PORTAL_HOST, defaults={"tenant": portal, "is_primary": True})
    return portal


@pytest.fixture
def portal_client(test_portal: Portal, db: None) -> APIClient:
    """A client on the test portal's host (its schema)."""
    return APIClient(HTTP_HOST=TEST_PORTAL_HOST)
