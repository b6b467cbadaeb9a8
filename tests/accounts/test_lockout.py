"""Login throttling by account and by IP (django-axes) on the admin login and POST /v1/auth/token: after
LOGIN_FAILURE_LIMIT wrong passwords even the right one is refused until the lockout ends (issue 13)."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db
LIMIT = 10


def _api(email: str, password: str, ip: str = "192.0.2.1"):
    return APIClient(HTTP_HOST="localhost", REMOTE_ADDR=ip).post(
        "/v1/auth/token", {"email": email, "password": password}, format="json"
    )


def _admin(email: str, password: str, ip: str = "192.0.2.1"):
    return Client(HTTP_HOST="localhost", REMOTE_ADDR=ip).post(
        "/admin/login/?next=/admin/", {"username": email, "password": password}
    )


@pytest.fixture(autouse=True)
def _api_throttle_out_of_the_way(settings):
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth": "1000/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}


def test_the_api_locks_an_account_out_after_the_limit_even_for_the_right_password():
    account = UserFactory(email="ada@example.com")

    wrong = [_api(account.email, "wrong", ip=f"198.51.100.{n}") for n in range(LIMIT)]  # from many addresses
    right = _api(account.email, DEFAULT_PASSWORD, ip="203.0.113.9")

    # The failure that reaches the limit already answers 429; from then on nothing is checked.
    assert [response.status_code for response in wrong] == [401] * (LIMIT - 1) + [429]
    assert right.status_code == 429
    assert right["Retry-After"] == "900"
    assert right.json() == {
        "detail": "Too many failed logins for this account or from this address; try again later. "
        "Expected available in 900 seconds."
    }


def test_the_api_locks_an_address_out_whatever_account_it_tries():
    accounts = [UserFactory(email=f"user{n}@example.com") for n in range(LIMIT + 1)]

    statuses = [_api(account.email, "wrong", ip="192.0.2.66").status_code for account in accounts[:LIMIT]]
    assert statuses == [401] * (LIMIT - 1) + [429]

    assert _api(accounts[LIMIT].email, DEFAULT_PASSWORD, ip="192.0.2.66").status_code == 429
    assert _api(accounts[LIMIT].email, DEFAULT_PASSWORD, ip="192.0.2.67").status_code == 200  # elsewhere: fine


def test_the_lockout_ends_after_the_cool_off_and_a_good_login_resets_the_count(settings):
    account = UserFactory(email="ada@example.com")
    for _ in range(LIMIT):
        _api(account.email, "wrong")
    assert _api(account.email, DEFAULT_PASSWORD).status_code == 429
    assert _api(account.email, DEFAULT_PASSWORD).status_code == 429  # attempts during it do not extend it

    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.first().attempt_time - timedelta(minutes=16))

    assert _api(account.email, DEFAULT_PASSWORD).status_code == 200
    assert _api(account.email, "wrong").status_code == 401  # counting starts again from zero
    assert _api(account.email, DEFAULT_PASSWORD).status_code == 200


def test_the_admin_login_is_locked_too_with_a_page_that_says_why():
    account = UserFactory(email="ada@example.com", is_staff=True)

    wrong = [_admin(account.email, "wrong") for _ in range(LIMIT)]
    right = _admin(account.email, DEFAULT_PASSWORD, ip="203.0.113.9")  # another address: the account is locked

    assert [response.status_code for response in wrong[:-1]] == [200] * (LIMIT - 1)  # the form again, with an error
    assert right.status_code == 429
    page = right.content.decode()
    assert "Too many failed sign-ins" in page and "0:15:00" in page
    assert "sessionid" not in right.cookies


def test_forty_wrong_admin_passwords_then_the_right_one_is_refused():
    """The issue's reproduction: before, all 41 attempts were checked and the last one signed in."""
    account = UserFactory(email="ada@example.com", is_staff=True)
    for _ in range(40):
        _admin(account.email, "wrong")

    assert _admin(account.email, DEFAULT_PASSWORD).status_code == 429
