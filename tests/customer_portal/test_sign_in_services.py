"""One-time e-mailed secrets (customer_portal.services): password reset, sign-in by link or code (issue 16)."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from django_tenants.utils import tenant_context
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from accounts.errors import AccountsError
from customer_portal.models import PortalSession, SignInToken
from customer_portal.services import (
    SignInRefused,
    email_sign_in_by_code,
    email_sign_in_by_link,
    password_reset,
    portal_housekeeping,
    portal_user_revoke,
    sign_in_token_get,
    sign_in_token_request,
)
from portalsite.errors import NotFoundError
from tests.conftest import PORTAL_HOST, PORTAL_USER_EMAIL, PortalUserLogin, mailed_code, mailed_link
from tests.jobs import run_jobs

pytestmark = pytest.mark.django_db

RESET = SignInToken.Purpose.PASSWORD_RESET
SIGN_IN = SignInToken.Purpose.EMAIL_SIGN_IN
NEW_PASSWORD = "quince harbour mosaic 4401"


def _mailed(portal, email=PORTAL_USER_EMAIL, purpose=RESET, host=PORTAL_HOST) -> mail.EmailMessage:
    with tenant_context(portal):
        sign_in_token_request(portal=portal, email=email, purpose=purpose, host=host)
    run_jobs()
    assert len(mail.outbox) == 1, [m.subject for m in mail.outbox]
    return mail.outbox.pop()


def _token(message: mail.EmailMessage) -> str:
    return mailed_link(message.body).token


def _code(message: mail.EmailMessage) -> str:
    return mailed_code(message.body)


def test_a_reset_e_mail_links_to_the_host_asked_on_and_stores_only_a_hash(portal, portal_user: PortalUserLogin):
    message = _mailed(portal)

    found = mailed_link(message.body)
    assert (found.host, found.page) == (f"{PORTAL_HOST}:8000", "password/reset")
    assert message.to == [PORTAL_USER_EMAIL]
    with tenant_context(portal):
        row = SignInToken.objects.get()
    assert found.token not in (row.token_hash, row.delivery_key)
    assert row.expires_at - row.created_at == timedelta(hours=1)


@pytest.mark.parametrize("email", ["nobody@example.com", "revoked", "foreign"])
def test_no_e_mail_and_no_row_for_an_address_that_is_not_an_active_member(
    portal, portal_user: PortalUserLogin, make_org_user, email
):
    if email == "revoked":
        with tenant_context(portal):
            portal_user_revoke(portal_user_id=portal_user.member.id)
        email = PORTAL_USER_EMAIL
    if email == "foreign":
        email = make_org_user().email  # an account, but no member here
    with tenant_context(portal):
        sign_in_token_request(portal=portal, email=email, purpose=RESET, host=PORTAL_HOST)
        assert not SignInToken.objects.exists()
    run_jobs()
    assert mail.outbox == []


def test_a_reset_sets_the_password_once_and_ends_every_session_and_refresh_token(portal, portal_user):
    token = _token(_mailed(portal))
    with tenant_context(portal):
        account = password_reset(token=token, password=NEW_PASSWORD)
        assert not PortalSession.objects.filter(ended_at__isnull=True).exists()
        with pytest.raises(NotFoundError):
            password_reset(token=token, password="another fine password 9")
    account.refresh_from_db()
    assert account.check_password(NEW_PASSWORD)
    live = OutstandingToken.objects.filter(user=account, blacklistedtoken__isnull=True)
    assert not live.exists()


def test_a_refused_password_keeps_the_link_usable(portal, portal_user):
    token = _token(_mailed(portal))
    with tenant_context(portal):
        with pytest.raises(AccountsError) as refused:
            password_reset(token=token, password="123")
        assert refused.value.field_errors[0].loc == ("password",)
        password_reset(token=token, password=NEW_PASSWORD)


def test_an_expired_reset_link_and_a_replaced_one_are_invalid(portal, portal_user, settings):
    first = _token(_mailed(portal))
    second = _token(_mailed(portal))
    with tenant_context(portal):
        with pytest.raises(NotFoundError):
            sign_in_token_get(token=first, purpose=RESET)  # a newer one replaced it
        SignInToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
        with pytest.raises(NotFoundError):
            sign_in_token_get(token=second, purpose=RESET)
        with pytest.raises(NotFoundError):
            sign_in_token_get(token=second, purpose=SIGN_IN)  # a reset link is no sign-in link


def test_a_sign_in_link_opens_a_session_once(portal, portal_user):
    message = _mailed(portal, purpose=SIGN_IN)
    token, code = _token(message), _code(message)
    with tenant_context(portal):
        account, session = email_sign_in_by_link(token=token, ip_address="10.0.0.7", user_agent="Mail app")
        assert account.id == portal_user.account.id
        assert (session.portal_user_id, session.ip_address) == (portal_user.member.id, "10.0.0.7")
        with pytest.raises(SignInRefused):
            email_sign_in_by_link(token=token, ip_address=None, user_agent="")
        with pytest.raises(SignInRefused):  # the code went with the link
            email_sign_in_by_code(email=PORTAL_USER_EMAIL, code=code, ip_address=None, user_agent="")


def test_the_code_signs_in_and_dies_after_five_wrong_tries(portal, portal_user):
    message = _mailed(portal, purpose=SIGN_IN)
    code = _code(message)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    with tenant_context(portal):
        for _ in range(4):
            with pytest.raises(SignInRefused):
                email_sign_in_by_code(email=PORTAL_USER_EMAIL, code=wrong, ip_address=None, user_agent="")
        _, session = email_sign_in_by_code(email=PORTAL_USER_EMAIL.upper(), code=code, ip_address=None, user_agent="")
        assert session.ended_at is None

    code = _code(_mailed(portal, purpose=SIGN_IN))
    with tenant_context(portal):
        for _ in range(5):
            with pytest.raises(SignInRefused):
                email_sign_in_by_code(email=PORTAL_USER_EMAIL, code=wrong, ip_address=None, user_agent="")
        with pytest.raises(SignInRefused):  # the right code, too late
            email_sign_in_by_code(email=PORTAL_USER_EMAIL, code=code, ip_address=None, user_agent="")
        assert SignInToken.objects.filter(purpose=SIGN_IN, used_at__isnull=True).count() == 0


def test_a_code_mailed_before_a_key_rotation_still_signs_in(portal, portal_user, settings):
    """The e-mail job rebuilds the code under SECRET_KEY or a fallback; the check follows the same key."""
    old_key = settings.SECRET_KEY
    with tenant_context(portal):
        sign_in_token_request(portal=portal, email=PORTAL_USER_EMAIL, purpose=SIGN_IN, host=PORTAL_HOST)
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-key-" + "k" * 50, [old_key]
    run_jobs()
    code = _code(mail.outbox.pop())

    with tenant_context(portal):
        _, session = email_sign_in_by_code(email=PORTAL_USER_EMAIL, code=code, ip_address=None, user_agent="")

    assert session.portal_user_id == portal_user.member.id


def test_the_code_expires_after_ten_minutes_and_the_link_after_fifteen(portal, portal_user):
    message = _mailed(portal, purpose=SIGN_IN)
    with tenant_context(portal):
        row = SignInToken.objects.get()
        assert row.expires_at - row.created_at == timedelta(minutes=15)
        assert row.code_expires_at - row.created_at == timedelta(minutes=10)
        SignInToken.objects.update(code_expires_at=timezone.now())
        with pytest.raises(SignInRefused):
            email_sign_in_by_code(email=PORTAL_USER_EMAIL, code=_code(message), ip_address=None, user_agent="")
        email_sign_in_by_link(token=_token(message), ip_address=None, user_agent="")  # the link still works


def test_a_link_mailed_before_the_member_was_revoked_signs_no_one_in(portal, portal_user):
    token = _token(_mailed(portal, purpose=SIGN_IN))
    with tenant_context(portal):
        portal_user_revoke(portal_user_id=portal_user.member.id)
        with pytest.raises(SignInRefused):
            email_sign_in_by_link(token=token, ip_address=None, user_agent="")


def test_housekeeping_deletes_links_dead_for_a_day(portal, portal_user):
    _mailed(portal)  # live
    _mailed(portal, purpose=SIGN_IN)  # live
    with tenant_context(portal):
        fresh, old = SignInToken.objects.order_by("created_at")
        SignInToken.objects.filter(id=old.id).update(used_at=timezone.now() - timedelta(days=2))
        portal_housekeeping()
        assert list(SignInToken.objects.values_list("id", flat=True)) == [fresh.id]
        SignInToken.objects.update(expires_at=timezone.now() - timedelta(hours=25))
        portal_housekeeping()
        assert not SignInToken.objects.exists()
