import uuid

import pytest
from django.conf import settings
from django.contrib.auth.hashers import identify_hasher
from django.db import IntegrityError, transaction
from rest_framework_simplejwt.tokens import AccessToken

from accounts.errors import AccountsError
from accounts.models import Organization, OrgMembership, User
from accounts.services import user_create
from tests.conftest import bearer_client
from tests.factories import DEFAULT_PASSWORD, OrganizationFactory, OrgMembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def _login(client, email, password=DEFAULT_PASSWORD):
    return client.post("/v1/auth/token", {"email": email, "password": password}, format="json")


def test_it_issues_a_token_pair_for_the_right_password(api_client):
    user = UserFactory(email="Alice@Example.com")

    response = _login(api_client, "alice@example.COM")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh"}
    assert AccessToken(body["access"])["user_id"] == str(user.id)


def test_wrong_password_and_unknown_email_get_the_same_401(api_client):
    UserFactory(email="alice@example.com")

    wrong_password = _login(api_client, "alice@example.com", "not the password")
    unknown_email = _login(api_client, "nobody@example.com")

    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json() == unknown_email.json()
    assert wrong_password["WWW-Authenticate"].startswith("Bearer")


def test_it_refuses_an_inactive_account(api_client):
    UserFactory(email="gone@example.com", is_active=False)

    assert _login(api_client, "gone@example.com").status_code == 401


def test_it_reports_missing_fields_as_422(api_client):
    response = api_client.post("/v1/auth/token", {"email": "a@example.com"}, format="json")

    assert response.status_code == 422
    assert response.json() == {
        "detail": [{"loc": ["body", "password"], "msg": "This field is required.", "type": "missing"}]
    }


def test_refresh_rotates_and_blacklists_the_old_refresh_token(api_client):
    UserFactory(email="alice@example.com")
    first = _login(api_client, "alice@example.com").json()

    rotated = api_client.post("/v1/auth/token/refresh", {"refresh": first["refresh"]}, format="json")
    replay = api_client.post("/v1/auth/token/refresh", {"refresh": first["refresh"]}, format="json")

    assert rotated.status_code == 200
    assert set(rotated.json()) == {"access", "refresh"}
    assert rotated.json()["refresh"] != first["refresh"]
    assert replay.status_code == 401
    assert replay["WWW-Authenticate"].startswith("Bearer")
    assert replay.json() == {"detail": "Token is blacklisted"}


def test_refresh_of_a_deleted_account_is_401(api_client):
    user = UserFactory(email="alice@example.com")
    refresh = _login(api_client, "alice@example.com").json()["refresh"]
    user.delete()

    response = api_client.post("/v1/auth/token/refresh", {"refresh": refresh}, format="json")

    assert response.status_code == 401


def test_logout_revokes_the_refresh_token(api_client):
    UserFactory(email="alice@example.com")
    refresh = _login(api_client, "alice@example.com").json()["refresh"]

    logout = api_client.post("/v1/auth/logout", {"refresh": refresh}, format="json")
    after = api_client.post("/v1/auth/token/refresh", {"refresh": refresh}, format="json")
    second_logout = api_client.post("/v1/auth/logout", {"refresh": refresh}, format="json")

    assert logout.status_code == 200
    assert logout.json() == {}
    assert after.status_code == 401
    assert second_logout.status_code == 401


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c"])
def test_a_malformed_refresh_token_is_401_or_422(api_client, token):
    response = api_client.post("/v1/auth/token/refresh", {"refresh": token}, format="json")

    assert response.status_code == (422 if token == "" else 401)


def test_the_token_endpoint_is_throttled_per_client(api_client, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"auth": "3/min"}}
    UserFactory(email="alice@example.com")

    statuses = [_login(api_client, "alice@example.com", "wrong").status_code for _ in range(4)]
    throttled = _login(api_client, "alice@example.com")

    assert statuses == [401, 401, 401, 429]
    assert throttled.status_code == 429
    assert 0 < int(throttled["Retry-After"]) <= 60
    assert "throttled" in throttled.json()["detail"].lower()


def test_email_is_unique_case_insensitively():
    user_create(email="alice@example.com", password="x")

    with pytest.raises(AccountsError) as excinfo:
        user_create(email="ALICE@example.com", password="x")
    assert [error.loc for error in excinfo.value.field_errors] == [("email",)]
    # The database enforces it too, whatever path writes the row.
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(email="Alice@EXAMPLE.com")


def test_passwords_are_hashed_with_argon2_in_production():
    assert settings.PASSWORD_HASHERS  # test settings swap in MD5 for speed; production's list is this:
    from portalsite import settings as production

    assert production.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")
    assert production.PASSWORD_HASHERS[1].endswith("PBKDF2PasswordHasher")
    user = User(email="x@example.com")
    user.set_password("pw")
    assert identify_hasher(user.password).algorithm == "md5"


def test_the_account_query_reads_the_same_organizations_as_admin_organizations():
    from accounts.selectors import account_get_with_admin_organizations, admin_organizations

    account = UserFactory()
    production = [OrgMembershipFactory(user=account).organization for _ in range(2)]
    OrgMembershipFactory(user=account, organization=OrganizationFactory(environment=Organization.Environment.SANDBOX))
    OrgMembershipFactory(user=account, role=OrgMembership.Role.MEMBER)
    OrgMembershipFactory()  # someone else's

    found = account_get_with_admin_organizations(user_id=account.id)

    assert found is not None
    loaded, organization_ids = found
    assert organization_ids == set(admin_organizations(user=account).values_list("id", flat=True))
    assert organization_ids == {organization.id for organization in production}
    reference = User.objects.get(id=account.id)
    assert [getattr(loaded, field.attname) for field in User._meta.concrete_fields] == [
        getattr(reference, field.attname) for field in User._meta.concrete_fields
    ]
    assert account_get_with_admin_organizations(user_id=uuid.uuid4()) is None


@pytest.mark.parametrize("how", ["deactivated", "deleted"])
def test_an_account_token_of_a_deactivated_or_deleted_account_is_401(api_client, how):
    admin = OrgMembershipFactory().user
    client = bearer_client(admin)
    assert client.get("/v1/portal").status_code == 200
    if how == "deactivated":
        User.objects.filter(id=admin.id).update(is_active=False)
    else:
        User.objects.filter(id=admin.id).delete()

    response = client.get("/v1/portal")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
