import re
from io import StringIO

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(api_client):
    response = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def test_it_serves_openapi_3(schema):
    assert schema["openapi"].startswith("3.")
    assert {"/v1/auth/token", "/v1/auth/token/refresh", "/v1/auth/logout", "/healthz"} <= set(schema["paths"])


def test_operations_are_tagged_by_their_api_group(schema):
    tags = {
        (path, method): operation["tags"]
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    }
    expected = {
        ("/v1/portal", "post"): ["portal"],
        ("/v1/portal/{portal_id}/users", "get"): ["portal"],
        ("/v1/customer-portal/config", "get"): ["customer-portal"],
        ("/v1/auth/token", "post"): ["auth"],
        ("/healthz", "get"): ["operations"],
        ("/v1/audit-events", "get"): ["audit"],
        ("/v1/audit-events/export", "get"): ["audit"],
        ("/v1/customer-portal/audit-events", "get"): ["customer-portal"],
        ("/v1/webhooks/{webhook_id}/deliveries", "get"): ["webhooks"],
    }
    assert {key: tags[key] for key in expected} == expected
    assert {tag for operation_tags in tags.values() for tag in operation_tags} == {
        "portal", "customer-portal", "auth", "audit", "webhooks", "operations"
    }  # fmt: skip
    assert [tag["name"] for tag in schema["tags"]] == [
        "portal", "customer-portal", "auth", "audit", "webhooks", "operations"
    ]  # fmt: skip


def test_every_operation_documents_its_422(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            response = operation["responses"]["422"]
            ref = response["content"]["application/json"]["schema"]["$ref"]
            assert ref == "#/components/schemas/HTTPValidationError", (method, path)


def test_the_error_components_follow_the_seed_names(schema):
    components = schema["components"]["schemas"]
    assert components["HTTPValidationError"]["properties"]["detail"]["items"]["$ref"].endswith("/ValidationError")
    assert {"loc", "msg", "type"} <= set(components["ValidationError"]["properties"])
    assert {"TokenObtainRequest", "TokenPairResponse", "TokenRefreshRequest", "LogoutRequest"} <= set(components)


def test_throttled_operations_document_429(schema):
    assert "429" in schema["paths"]["/v1/auth/token"]["post"]["responses"]


@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_docs_pages_load_their_assets_from_this_server(api_client, page):
    html = api_client.get(page).content.decode()

    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert assets, "the page must reference local assets, not a CDN"
    assert "cdn" not in html.lower()
    for asset in assets:
        response = api_client.get(asset)
        assert response.status_code == 200, asset


def test_the_bearer_scheme_is_declared_and_required_by_admin_operations(schema):
    schemes = schema["components"]["securitySchemes"]
    [name] = [name for name, s in schemes.items() if s["type"] == "http" and s["scheme"] == "bearer"]
    create = schema["paths"]["/v1/portal"]["post"]
    assert create["security"] == [{name: []}]
    assert {"401", "403", "422"} <= set(create["responses"])


def test_seed_component_names_are_used(schema):
    assert {
        "PortalCreateRequest",
        "PortalUpdateRequest",
        "PortalResponse",
        "PortalUserInviteRequest",
        "PortalUserInviteResponse",
        "PortalUserResponse",
        "HTTPValidationError",
    } <= set(schema["components"]["schemas"])
    patch = schema["paths"]["/v1/portal/{portal_id}"]["patch"]["requestBody"]["content"]["application/json"]
    assert patch["schema"]["$ref"] == "#/components/schemas/PortalUpdateRequest"


def test_the_schema_validates_without_warnings():
    out = StringIO()
    call_command("spectacular", "--urlconf", "portalsite.urls", "--validate", "--fail-on-warn", stdout=out)
    assert "openapi: 3" in out.getvalue()
