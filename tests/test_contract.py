"""The error contract of API.md: shapes, codes, and no 5xx for any body on any endpoint."""

import json
import re
import uuid
from collections.abc import Iterator

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework import serializers
from rest_framework_simplejwt.tokens import RefreshToken

from portalsite.api.exception_handler import validation_error_items
from portalsite.api.serializers import InputSerializer
from tests.conftest import MAIN_HOST, TEST_PORTAL_HOST, bearer_client

pytestmark = pytest.mark.django_db


class _Member(InputSerializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=["member", "manager"], required=False)


class _Invite(InputSerializer):
    users = _Member(many=True)
    send_email = serializers.BooleanField(required=False)


def test_loc_reaches_into_nested_lists():
    serializer = _Invite(
        data={"users": [{"email": "a@example.com"}, {"email": "nope", "role": "owner"}, {"emial": "x"}], "x": 1}
    )
    assert not serializer.is_valid()

    items = sorted(validation_error_items(serializer.errors, ("body",)), key=lambda item: str(item["loc"]))

    assert items == [
        {"loc": ["body", "users", 1, "email"], "msg": "Enter a valid email address.", "type": "value_error"},
        {"loc": ["body", "users", 1, "role"], "msg": '"owner" is not a valid choice.', "type": "value_error"},
        {"loc": ["body", "users", 2, "email"], "msg": "This field is required.", "type": "missing"},
        {"loc": ["body", "users", 2, "emial"], "msg": "Unknown field.", "type": "extra_forbidden"},
        {"loc": ["body", "x"], "msg": "Unknown field.", "type": "extra_forbidden"},
    ]


def test_a_non_object_body_is_422_at_body(api_client):
    response = api_client.post("/v1/auth/token", [1, 2], format="json")

    assert response.status_code == 422
    [item] = response.json()["detail"]
    assert item["loc"] == ["body"]


@pytest.mark.parametrize(
    ("body", "content_type", "expected_type"),
    [
        (b'{"email": ', "application/json", "json_invalid"),
        (b"email=a@example.com&password=x", "application/x-www-form-urlencoded", "content_type"),
        (b'{"email": "a@example.com", "password": "x"}', "text/plain", "content_type"),
        (b'{"email": "a@example.com", "password": "x", "admin": true}', "application/json", "extra_forbidden"),
    ],
)
def test_malformed_json_wrong_content_type_and_unknown_fields_are_422(api_client, body, content_type, expected_type):
    response = api_client.generic("POST", "/v1/auth/token", body, content_type=content_type)

    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == expected_type


@pytest.mark.parametrize(
    ("accept", "query", "status"),
    [
        (None, "", 200),
        ("*/*", "", 200),
        ("application/json", "", 200),
        ("application/json; indent=2", "", 200),
        ("text/html", "", 406),
        ("application/json", "?format=xml", 404),
    ],
)
def test_content_negotiation_answers_json_or_406(session_admin, accept, query, status):
    client = bearer_client(session_admin)
    extra = {"HTTP_ACCEPT": accept} if accept else {}

    response = client.get(f"/v1/portal{query}", **extra)

    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.content.startswith(b"[\n  {") == (accept == "application/json; indent=2")


def test_unknown_paths_and_hosts_are_json_404(api_client, client):
    assert api_client.get("/v1/nothing-here").json() == {"detail": "Not found."}
    for host in ("unknown.localhost", "evil.example.org"):  # unrouted, and outside ALLOWED_HOSTS
        response = client.get("/healthz", HTTP_HOST=host)
        assert response.status_code == 404
        assert response.json() == {"detail": "Not found."}


# Hostile bodies --------------------------------------------------------------

_DEEP_ARRAY = "[" * 100_000 + "]" * 100_000
_DEEP_OBJECT = '{"a":' * 50_000 + "1" + "}" * 50_000
_FIELDS = ("email", "password", "refresh", "name", "token", "users", "custom_domain", "slug")


def _object(value: object) -> bytes:
    return json.dumps(dict.fromkeys(_FIELDS, value)).encode()


HOSTILE_BODIES: dict[str, tuple[bytes, str]] = {
    "deep-array": (_DEEP_ARRAY.encode(), "application/json"),
    "deep-object": (_DEEP_OBJECT.encode(), "application/json"),
    "huge-strings": (_object("a" * 200_000), "application/json"),
    "nul-bytes": (_object("a\u0000b@example.com"), "application/json"),
    "sql-and-shell": (_object("'; DROP SCHEMA public CASCADE; -- $(rm -rf /)"), "application/json"),
    "wrong-types-list": (_object([1, {"a": None}]), "application/json"),
    "wrong-types-object": (_object({"$ne": None}), "application/json"),
    "wrong-types-number": (_object(1e308), "application/json"),
    "top-level-array": (b"[1, 2, 3]", "application/json"),
    "top-level-string": (b'"hello"', "application/json"),
    "top-level-null": (b"null", "application/json"),
    "nan": (b'{"email": NaN}', "application/json"),
    "non-utf8": (b'{"email": "\xff\xfe\xfd"}', "application/json"),
    "latin1-declared": (b'{"email": "\xe9"}', "application/json; charset=latin-1"),
    "empty": (b"", "application/json"),
    "form": (b"email=a%00b&password[]=1", "application/x-www-form-urlencoded"),
    "multipart-garbage": (b"--x\r\nnot really\r\n", "multipart/form-data; boundary=x"),
    "too-large": (b'{"email": "' + b"a" * (3 * 1024 * 1024) + b'"}', "application/json"),
}


def _concrete_paths(resolver: URLResolver, prefix: str = "") -> Iterator[str]:
    """Every route of a URLconf with its parameters filled in (admin pages are not API)."""
    for entry in resolver.url_patterns:
        pattern = str(entry.pattern)
        if pattern.startswith("admin/"):
            continue
        route = re.sub(r"<(?:\w+:)?\w+>", str(uuid.uuid4()), pattern)
        route = re.sub(r"\(\?P<\w+>[^)]*\)", str(uuid.uuid4()), route)
        route = route.lstrip("^").rstrip("$").replace("(?:v1|api)/", "v1/no-such-thing")
        if isinstance(entry, URLResolver):
            yield from _concrete_paths(entry, prefix + route)
        elif isinstance(entry, URLPattern):
            yield "/" + prefix + route


def _endpoints() -> list[tuple[str, str]]:
    return [(MAIN_HOST, path) for path in _concrete_paths(get_resolver("portalsite.urls"))] + [
        (TEST_PORTAL_HOST, path) for path in _concrete_paths(get_resolver("portalsite.urls_portal"))
    ]


def test_the_endpoint_list_covers_the_api():
    paths = {path for _, path in _endpoints()}
    assert {"/v1/auth/token", "/v1/auth/token/refresh", "/v1/auth/logout", "/healthz", "/api/schema/"} <= paths


@pytest.mark.parametrize("caller", ["anonymous", "org-admin"])
@pytest.mark.parametrize("name", HOSTILE_BODIES)
def test_no_endpoint_answers_5xx_to_a_hostile_body(client, test_portal, session_admin, settings, name, caller):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"auth": "100000/min"}}
    body, content_type = HOSTILE_BODIES[name]
    headers = {"HTTP_X_PORTAL_ID": str(test_portal.id)}  # lets main-host calls reach /v1/customer-portal
    if caller == "org-admin":
        headers["HTTP_AUTHORIZATION"] = f"Bearer {RefreshToken.for_user(session_admin).access_token}"
    failures = []
    for host, path in _endpoints():
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            response = client.generic(method, path, body, content_type=content_type, HTTP_HOST=host, **headers)
            if response.status_code >= 500:
                failures.append(f"{method} {host}{path}: {response.status_code}")
            elif response["Content-Type"].startswith("application/json") and response.status_code >= 400:
                assert "detail" in response.json(), (method, path)
    assert not failures


def test_a_body_over_the_size_limit_is_413(api_client):
    body, content_type = HOSTILE_BODIES["too-large"]

    response = api_client.generic("POST", "/v1/auth/token", body, content_type=content_type)

    assert response.status_code == 413


_CP = "/v1/customer-portal"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "loc"),
    [
        ("post", "/v1/portal", {"name": "a\u0000b"}, 422, ["body", "name"]),
        ("post", "/v1/portal", {"name": "ok", "custom_domain": "a\u0000.example.com"}, 422, ["body", "custom_domain"]),
        ("post", "/v1/portal", {"name": "ok", "slug": "a\u0000b"}, 422, ["body", "slug"]),
        ("post", f"{_CP}/users/invite", {"email": "a\u0000@example.com"}, 422, ["body", "email"]),
        ("post", f"{_CP}/invitations", {"email": "a@example.com", "message": "\u0000"}, 422, ["body", "message"]),
        ("patch", f"{_CP}/config", {"welcome_message": "\u0000"}, 422, ["body", "welcome_message"]),
        ("patch", f"{_CP}/config", {"allowed_email_domains": ["\u0000.com"]}, 422, ["body", "allowed_email_domains"]),
        ("get", f"{_CP}/users?search=%00", None, 422, ["query", "search"]),
        ("get", f"{_CP}/users?search=" + "a" * 300, None, 422, ["query", "search"]),
        ("get", f"{_CP}/invitations?status=%00", None, 422, ["query", "status"]),
        ("patch", f"{_CP}/features/%00/toggle", {}, 404, None),  # an unknown feature id
        ("delete", f"{_CP}/users/%00", None, 404, None),  # an id that names no one
    ],
)  # fmt: skip
def test_nul_bytes_and_oversized_values_in_valid_shapes_are_422_naming_the_field_or_404(
    client, test_portal, session_admin, method, path, body, status, loc
):
    token = RefreshToken.for_user(session_admin).access_token
    headers = {"HTTP_HOST": MAIN_HOST, "HTTP_X_PORTAL_ID": str(test_portal.id), "HTTP_AUTHORIZATION": f"Bearer {token}"}

    response = getattr(client, method)(path, body, content_type="application/json", **headers)

    assert response.status_code == status, response.content
    if loc is None:
        assert response.json() == {"detail": "Not found."}
    else:
        assert response.json()["detail"][0]["loc"][: len(loc)] == loc


def test_a_nul_byte_in_the_portal_header_is_404(client, session_admin):
    token = RefreshToken.for_user(session_admin).access_token

    response = client.get(
        "/v1/customer-portal/config",
        HTTP_HOST=MAIN_HOST,
        HTTP_X_PORTAL_ID="\u0000",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )

    assert response.status_code == 404


# Hostile query strings on every list endpoint ------------------------------------------------

HOSTILE_INTEGERS = {
    "bigint-overflow": "99999999999999999999999",
    "bigint-edge": str(2**63),
    "negative": "-1",
    "float": "1e5",
    "nul": "%00",
    "huge-digits": "9" * 5000,
}
_LIST_ENDPOINTS = [  # (path, the paging parameters it reads: limit and offset, a limit of its own, or none)
    ("/v1/portal", set()),
    ("/v1/portal/{portal_id}/users", {"limit", "offset"}),
    ("/v1/customer-portal/users", {"limit", "offset"}),
    ("/v1/customer-portal/invitations", set()),
    ("/v1/customer-portal/sessions", set()),
    ("/v1/audit-events", {"limit"}),  # pages by cursor (tests/events/test_api.py)
    ("/v1/customer-portal/audit-events", {"limit"}),
]


@pytest.mark.parametrize("name", HOSTILE_INTEGERS)
@pytest.mark.parametrize("parameter", ["offset", "limit"])
def test_hostile_integer_query_values_are_422_in_the_query_on_every_list(
    client, test_portal, session_admin, parameter, name
):
    token = RefreshToken.for_user(session_admin).access_token
    headers = {"HTTP_HOST": MAIN_HOST, "HTTP_X_PORTAL_ID": str(test_portal.id), "HTTP_AUTHORIZATION": f"Bearer {token}"}

    for template, paging in _LIST_ENDPOINTS:
        path = template.format(portal_id=test_portal.id)
        response = client.get(f"{path}?{parameter}={HOSTILE_INTEGERS[name]}", **headers)
        if parameter in paging:
            assert response.status_code == 422, (path, response.content)
            assert [item["loc"] for item in response.json()["detail"]] == [["query", parameter]], path
        else:  # a list that does not page ignores them, and still never fails
            assert response.status_code == 200, (path, response.content)


def test_the_largest_offset_allowed_is_an_empty_page(client, test_portal, session_admin):
    from portalsite.api.serializers import MAX_OFFSET

    token = RefreshToken.for_user(session_admin).access_token
    headers = {"HTTP_HOST": MAIN_HOST, "HTTP_X_PORTAL_ID": str(test_portal.id), "HTTP_AUTHORIZATION": f"Bearer {token}"}

    for path in (f"/v1/portal/{test_portal.id}/users", "/v1/customer-portal/users"):
        response = client.get(f"{path}?offset={MAX_OFFSET}&limit=10000", **headers)
        assert (response.status_code, response.json()) == (200, []), path
