import uuid
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Organization, OrgMembership, User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _create_org(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("create_org", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_create_org_prints_the_id_and_makes_the_admin():
    out, err = _create_org("Acme", "--admin-email", "Boss@Acme.test", "--admin-password", "pw-1234567")

    organization = Organization.objects.get(id=uuid.UUID(out.strip()))
    assert organization.environment == Organization.Environment.PRODUCTION
    assert organization.slug == "acme"
    membership = OrgMembership.objects.get(organization=organization)
    assert membership.role == OrgMembership.Role.ADMIN
    assert membership.user.check_password("pw-1234567")
    assert "(as given)" in err


def test_create_org_generates_and_prints_a_password_when_none_is_given():
    _, err = _create_org("Acme", "--admin-email", "boss@acme.test")

    password = err.split("with password ")[1].strip()
    assert User.objects.get(email="boss@acme.test").check_password(password)


def test_create_org_reuses_an_existing_account_without_touching_its_password():
    user = UserFactory(email="boss@acme.test")
    old_hash = user.password

    _, err = _create_org("Acme", "--admin-email", "BOSS@acme.test", "--sandbox")

    user.refresh_from_db()
    assert user.password == old_hash
    assert Organization.objects.get(name="Acme").environment == Organization.Environment.SANDBOX
    assert "existing account" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Other", "--admin-email", "not-an-email"], "Enter a valid email address."),
        (["ACME", "--admin-email", "x@acme.test"], "An organization named 'ACME' already exists."),
        (["  ", "--admin-email", "x@acme.test"], "Organization name must not be blank."),
    ],
)
def test_create_org_refuses_bad_input_with_one_line(args, message):
    _create_org("Acme", "--admin-email", "boss@acme.test")

    with pytest.raises(CommandError) as excinfo:
        _create_org(*args)

    assert str(excinfo.value) == message
    assert Organization.objects.filter(name__iexact="acme").count() == 1
