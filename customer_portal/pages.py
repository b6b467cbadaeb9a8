"""Server-rendered pages on portal hosts: a complete, branded way in for the portal's people.

Home, invitation acceptance, sign-in by password or by an e-mailed link or code, sign-out, forgotten and
reset password, and the account page (name, password, this portal's sessions). Plain Django views with
CSRF-protected forms and no JavaScript; they call the same services as the JSON API (customer_portal/api).
A browser sign-in is a portal session behind a cookie (customer_portal.browser_sessions). The URLconf
(customer_portal/page_urls.py) is included by portal hosts only.
"""

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib.auth import authenticate
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_tenants.utils import get_public_schema_name
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.api.throttles import AuthRateThrottle, email_throttle_wait
from accounts.lockout import lockout_seconds
from accounts.models import User
from customer_portal.api.portal import request_portal_host
from customer_portal.browser_sessions import browser_session_clear, browser_session_start, request_browser_session
from customer_portal.models import Invitation, PortalSession, PortalUser, SignInToken
from customer_portal.page_forms import (
    PASSWORDS_DIFFER,
    CodeForm,
    EmailForm,
    InvitationAcceptForm,
    LoginForm,
    NameForm,
    NewPasswordForm,
    PasswordChangeForm,
)
from customer_portal.selectors import feature_list, portal_settings_get, portal_user_session_list
from customer_portal.services import (
    INVALID_INVITATION,
    INVALID_LINK,
    MAX_TOKEN_LENGTH,
    PortalLoginRefused,
    SignInRefused,
    email_sign_in_by_code,
    email_sign_in_by_link,
    invitation_accept,
    invitation_get_by_token,
    password_reset,
    portal_password_change,
    portal_session_end,
    portal_session_open,
    portal_user_name_update,
    portal_user_sessions_end_others,
    sign_in_token_get,
    sign_in_token_request,
)
from portals.models import Portal
from portalsite.errors import ApplicationError, NotFoundError
from portalsite.requests import client_details

__all__ = ["PASSWORDS_DIFFER"]  # the tests read it here, where the invitation form always lived

EXISTING_ACCOUNT_NOTICE = "You already have an account: enter its password."
TOO_MANY_ATTEMPTS = "Too many attempts from your network. Try again in {seconds} seconds."
TOO_MANY_EMAILS = "Too many e-mails were asked for this address. Try again in {seconds} seconds."
LOCKED_OUT = "Too many failed sign-ins for this account or from your network. Try again in {seconds} seconds."
SIGN_IN_FAILED = "That e-mail address and password do not match an account with access to this portal."
EMAIL_SENT = "If this address has an account here, we sent it an e-mail. It can take a minute to arrive."
# What /account and the sign-in pages say after a redirect (`?done=`); nothing else from the URL is shown.
NOTICES = {
    "signed_out": "You are signed out.",
    "reset": "Your password is changed, and every other sign-in has ended. Sign in with the new password.",
    "name": "Your name is saved.",
    "password": "Your password is changed. Every other sign-in of your account has ended.",
    "ended": "That session has ended.",
    "ended_others": "Every other session has ended.",
}

# Inline CSS only and no scripts: a stored value that slipped past validation still cannot run code.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


class _PageThrottle(AuthRateThrottle):
    """The credential APIs' per-IP budget (same cache key), so the forms are no way around it. Keyed by
    address even for a signed-in browser: these forms check passwords, codes and links."""

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def _throttle_wait(request: HttpRequest) -> int | None:
    """None when this attempt is within the budget; else the seconds to wait."""
    throttle = _PageThrottle()
    if throttle.allow_request(Request(request), APIView()):  # a DRF throttle outside a DRF view
        return None
    return max(1, round(throttle.wait() or 1))


def _portal(request: HttpRequest) -> Portal:
    """The portal of the request's host; these pages do not exist anywhere else."""
    tenant = getattr(request, "tenant", None)
    if not isinstance(tenant, Portal) or tenant.schema_name == get_public_schema_name():
        raise Http404
    return tenant


def _accent_text(color: str) -> str:
    """Black or white, whichever reads better on `color` (WCAG relative luminance)."""
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return "#111111" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.179 else "#ffffff"


def _branding(portal: Portal) -> dict[str, Any]:
    portal_settings = portal_settings_get()
    color = portal_settings.safe_primary_color
    return {
        "display_name": portal_settings.display_name or portal.name,
        "logo_url": portal_settings.logo_url,
        "primary_color": color,
        "accent_text": _accent_text(color),
        "support_email": portal_settings.support_email,
        "welcome_message": portal_settings.welcome_message,
    }


def _page(
    request: HttpRequest, portal: Portal, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> HttpResponse:
    """A page in the portal's branding; the header says who is signed in (the one session query)."""
    session = request_browser_session(request, portal)
    full = {
        **_branding(portal),
        "member": session.portal_user if session else None,
        "notice": NOTICES.get(request.GET.get("done", "")),
        **(context or {}),
    }
    response = render(request, f"customer_portal/{template}", full, status=status)
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    # Links carry secrets (invitations, sign-in, reset): never send them on to another site. Not "no-referrer":
    # with it Chromium sends `Origin: null` on the page's own form posts, and CSRF refuses them.
    response["Referrer-Policy"] = "same-origin"
    return response


def _form_page(
    request: HttpRequest, portal: Portal, template: str, form: forms.Form, status: int = 200, **extra: Any
) -> HttpResponse:
    return _page(request, portal, template, {"form": form, **extra}, status=status)


def _throttled(
    request: HttpRequest, portal: Portal, template: str, form: forms.Form, seconds: int, message: str, **extra: Any
) -> HttpResponse:
    form.add_error(None, message.format(seconds=seconds))
    response = _form_page(request, portal, template, form, status=429, **extra)
    response["Retry-After"] = str(seconds)
    return response


def _refused_post(
    request: HttpRequest, portal: Portal, template: str, form: forms.Form, **extra: Any
) -> HttpResponse | None:
    """The answer to a posted form that may not go on (over the per-IP budget: 429 with the wait; invalid:
    422), or None when it may."""
    seconds = _throttle_wait(request)
    if seconds is not None:
        return _throttled(request, portal, template, form, seconds, TOO_MANY_ATTEMPTS, **extra)
    if not form.is_valid():
        return _form_page(request, portal, template, form, status=422, **extra)
    return None


def _field_errors(form: forms.Form, exc: ApplicationError) -> None:
    """A service's refusal, shown on the form: on its field when the form has one, else above the form."""
    for error in exc.field_errors:
        field = str(error.loc[-1]) if error.loc else None
        form.add_error(field if field in form.fields else None, error.msg)
    if not exc.field_errors:
        form.add_error(None, exc.message)


def _redirect(path: str, **query: str) -> HttpResponseRedirect:
    return HttpResponseRedirect(f"{path}?{urlencode(query)}" if query else path)


def _next_path(request: HttpRequest) -> str:
    """Where to go after signing in: `next` when it is a path on this host, else home."""
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if (
        wanted.startswith("/")
        and not wanted.startswith("//")
        and "\\" not in wanted
        and url_has_allowed_host_and_scheme(wanted, allowed_hosts=None)
    ):
        return wanted
    return "/"


def _browser_switch(request: HttpRequest, portal: Portal, session: PortalSession, response: HttpResponse) -> None:
    """Sign the browser in with `session`, ending the one it had (perhaps someone else's)."""
    previous = request_browser_session(request, portal)
    if previous is not None and previous.id != session.id:
        _session_end(session_id=str(previous.id))
    browser_session_start(response, portal=portal, session=session)


def _signed_in(request: HttpRequest, portal: Portal, session: PortalSession, to: str = "/") -> HttpResponseRedirect:
    """Sign the browser in with `session` and go on."""
    response = _redirect(to)
    _browser_switch(request, portal, session, response)
    return response


def _session_end(*, session_id: str, portal_user: PortalUser | None = None) -> None:
    """End a session if it is still live (and, with `portal_user`, theirs): one ended meanwhile is no error."""
    with contextlib.suppress(NotFoundError):
        portal_session_end(session_id=session_id, portal_user=portal_user)


def _link_live(token: str, purpose: str) -> bool:
    """Whether `token` is a live link of `purpose`; asking uses nothing up."""
    try:
        sign_in_token_get(token=token, purpose=purpose)
    except NotFoundError:
        return False
    return True


def _invalid_link(request: HttpRequest, portal: Portal) -> HttpResponse:
    """Every link that is not live (used, replaced, expired, unknown, another portal's) gets this same page."""
    return _page(request, portal, "link_invalid.html", {"message": INVALID_LINK}, status=404)


# Home and invitations -------------------------------------------------------------------------------------


def _home(request: HttpRequest, portal: Portal, **extra: Any) -> HttpResponse:
    features = [feature for feature in feature_list() if feature.enabled]
    return _page(request, portal, "home.html", {"features": features, **extra})


@never_cache  # it says who is signed in
@require_safe
def home(request: HttpRequest) -> HttpResponse:
    """The portal's public face (branding, welcome message, enabled features) and who is signed in here."""
    return _home(request, _portal(request))


def _invalid_invitation(request: HttpRequest, portal: Portal) -> HttpResponse:
    return _page(request, portal, "invite_invalid.html", {"message": INVALID_INVITATION}, status=404)


def _invitation(token: str) -> Invitation | None:
    if len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        return invitation_get_by_token(token=token)
    except NotFoundError:
        return None


def _invite_context(invitation: Invitation, form: InvitationAcceptForm) -> dict[str, Any]:
    return {
        "email": invitation.portal_user.email,
        "existing_account": form.existing_account,
        "existing_account_notice": EXISTING_ACCOUNT_NOTICE,
    }


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def invite(request: HttpRequest, token: str) -> HttpResponse:
    """Accept an invitation, which signs the person in; any token that is not a live invitation gets the same
    neutral 404 page."""
    portal = _portal(request)
    invitation = _invitation(token)
    if invitation is None:
        return _invalid_invitation(request, portal)
    existing_account = User.objects.filter(email__iexact=invitation.portal_user.email).exists()
    if request.method != "POST":
        form = InvitationAcceptForm(existing_account=existing_account, initial={"name": invitation.portal_user.name})
        return _form_page(request, portal, "invite.html", form, **_invite_context(invitation, form))

    form = InvitationAcceptForm(request.POST, existing_account=existing_account)
    refused = _refused_post(request, portal, "invite.html", form, **_invite_context(invitation, form))
    if refused is not None:
        return refused
    try:
        with transaction.atomic():
            account, session = invitation_accept(
                portal=portal,
                token=token,
                password=form.cleaned_data["password"],
                name=form.cleaned_data.get("name", ""),
                **client_details(request),
            )
    except NotFoundError:
        return _invalid_invitation(request, portal)
    except ApplicationError as exc:
        _field_errors(form, exc)
        status = 422 if exc.field_errors else exc.status
        return _form_page(request, portal, "invite.html", form, status=status, **_invite_context(invitation, form))
    response = _home(request, portal, welcome_name=account.name, accepted=True, member=session.portal_user)
    _browser_switch(request, portal, session, response)
    return response


# Signing in and out --------------------------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    """E-mail and password. Every failure (unknown address, wrong password, no active membership here) gets the
    same message; too many attempts (per IP, or per account and per IP by django-axes) a 429 with the wait."""
    portal = _portal(request)
    next_path = _next_path(request)
    if request.method != "POST":
        return _form_page(request, portal, "login.html", LoginForm(), next=next_path)
    form = LoginForm(request.POST)
    refused = _refused_post(request, portal, "login.html", form, next=next_path)
    if refused is not None:
        return refused
    account = authenticate(request, email=form.cleaned_data["email"], password=form.cleaned_data["password"])
    if getattr(request, "axes_locked_out", False):
        # This page says so in the portal's look: AxesMiddleware would put the admin's lockout page in its place.
        request.axes_locked_out = False  # type: ignore[attr-defined]
        return _throttled(request, portal, "login.html", form, lockout_seconds(), LOCKED_OUT, next=next_path)
    try:
        if not isinstance(account, User):
            raise PortalLoginRefused()
        session = portal_session_open(user=account, **client_details(request))
    except PortalLoginRefused:
        form.add_error(None, SIGN_IN_FAILED)
        return _form_page(request, portal, "login.html", form, status=422, next=next_path)
    return _signed_in(request, portal, session, next_path)


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    """End this browser's session (if it still has one) and forget the cookie."""
    portal = _portal(request)
    session = request_browser_session(request, portal)
    if session is not None:
        _session_end(session_id=str(session.id))
    response = _redirect("/login", done="signed_out")
    browser_session_clear(response)
    return response


def _email_request(request: HttpRequest, purpose: str, template: str) -> HttpResponse:
    """Ask for a sign-in or reset e-mail: the same answer whether or not the address has an account here."""
    portal = _portal(request)
    if request.method != "POST":
        return _form_page(request, portal, template, EmailForm())
    form = EmailForm(request.POST)
    refused = _refused_post(request, portal, template, form)
    if refused is not None:
        return refused
    email = form.cleaned_data["email"]
    seconds = email_throttle_wait(email=email, request=request)
    if seconds is not None:
        return _throttled(request, portal, template, form, seconds, TOO_MANY_EMAILS)
    sign_in_token_request(portal=portal, email=email, purpose=purpose, host=request_portal_host(request))
    code_form = CodeForm(initial={"email": email}) if purpose == SignInToken.Purpose.EMAIL_SIGN_IN else None
    return _page(request, portal, "email_sent.html", {"message": EMAIL_SENT, "form": code_form})


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def login_email(request: HttpRequest) -> HttpResponse:
    """Ask for a sign-in link and code by e-mail."""
    return _email_request(request, SignInToken.Purpose.EMAIL_SIGN_IN, "login_email.html")


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def login_code(request: HttpRequest) -> HttpResponse:
    """Sign in with the e-mailed code (five tries, then it is void)."""
    portal = _portal(request)
    if request.method != "POST":
        return _form_page(request, portal, "login_code.html", CodeForm(initial={"email": request.GET.get("email")}))
    form = CodeForm(request.POST)
    refused = _refused_post(request, portal, "login_code.html", form)
    if refused is not None:
        return refused
    try:
        _, session = email_sign_in_by_code(
            email=form.cleaned_data["email"], code=form.cleaned_data["code"], **client_details(request)
        )
    except SignInRefused as exc:
        form.add_error(None, exc.message)
        return _form_page(request, portal, "login_code.html", form, status=422)
    return _signed_in(request, portal, session)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def login_email_link(request: HttpRequest, token: str) -> HttpResponse:
    """The e-mailed link: its GET only shows a button (mail scanners follow links), the button signs in."""
    portal = _portal(request)
    if not _link_live(token, SignInToken.Purpose.EMAIL_SIGN_IN):
        return _invalid_link(request, portal)
    if request.method != "POST":
        return _page(request, portal, "login_email_confirm.html")
    seconds = _throttle_wait(request)
    if seconds is not None:
        response = _page(
            request,
            portal,
            "login_email_confirm.html",
            {"error": TOO_MANY_ATTEMPTS.format(seconds=seconds)},
            status=429,
        )
        response["Retry-After"] = str(seconds)
        return response
    try:
        _, session = email_sign_in_by_link(token=token, **client_details(request))
    except SignInRefused:
        return _invalid_link(request, portal)
    return _signed_in(request, portal, session)


# Passwords -----------------------------------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def password_forgot(request: HttpRequest) -> HttpResponse:
    return _email_request(request, SignInToken.Purpose.PASSWORD_RESET, "password_forgot.html")


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def password_reset_page(request: HttpRequest, token: str) -> HttpResponse:
    """A new password (twice, Django's validators) with the e-mailed link; then every sign-in has ended."""
    portal = _portal(request)
    if not _link_live(token, SignInToken.Purpose.PASSWORD_RESET):
        return _invalid_link(request, portal)
    if request.method != "POST":
        return _form_page(request, portal, "password_reset.html", NewPasswordForm())
    form = NewPasswordForm(request.POST)
    refused = _refused_post(request, portal, "password_reset.html", form)
    if refused is not None:
        return refused
    try:
        password_reset(token=token, password=form.cleaned_data["password"])
    except NotFoundError:
        return _invalid_link(request, portal)
    except ApplicationError as exc:
        _field_errors(form, exc)
        return _form_page(request, portal, "password_reset.html", form, status=422)
    response = _redirect("/login", done="reset")
    browser_session_clear(response)
    return response


# The account page -----------------------------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    """Name, e-mail, password, and this portal's sessions of the account (end one, or all others)."""
    portal = _portal(request)
    session = request_browser_session(request, portal)
    if session is None:
        return _redirect("/login", next="/account")
    name_form: forms.Form = NameForm(initial={"name": session.portal_user.name})
    password_form: forms.Form = PasswordChangeForm()
    status, retry_after = 200, None
    if request.method == "POST":
        handler = _ACCOUNT_ACTIONS.get(request.POST.get("action", ""))
        if handler is None:
            return _redirect("/account")
        result = handler(request, portal, session)
        if isinstance(result, HttpResponse):
            return result
        if isinstance(result.form, NameForm):
            name_form = result.form
        else:
            password_form = result.form
        status, retry_after = result.status, result.retry_after
    response = _account_page(request, portal, session, name_form, password_form, status=status)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


@dataclass
class _Refused:
    """An account form that did not go through, to show again with its errors."""

    form: forms.Form
    status: int = 422
    retry_after: int | None = None


def _account_page(
    request: HttpRequest,
    portal: Portal,
    session: PortalSession,
    name_form: forms.Form,
    password_form: forms.Form,
    status: int = 200,
) -> HttpResponse:
    context = {
        "name_form": name_form,
        "password_form": password_form,
        "sessions": portal_user_session_list(portal_user_id=session.portal_user_id),
        "current_session_id": session.id,
    }
    return _page(request, portal, "account.html", context, status=status)


def _account_name(request: HttpRequest, portal: Portal, session: PortalSession) -> HttpResponse | _Refused:
    form = NameForm(request.POST)
    if not form.is_valid():
        return _Refused(form)
    portal_user_name_update(member=session.portal_user, name=form.cleaned_data["name"])
    return _redirect("/account", done="name")


def _account_password(request: HttpRequest, portal: Portal, session: PortalSession) -> HttpResponse | _Refused:
    form = PasswordChangeForm(request.POST)
    seconds = _throttle_wait(request)
    if seconds is not None:
        form.add_error(None, TOO_MANY_ATTEMPTS.format(seconds=seconds))
        return _Refused(form, status=429, retry_after=seconds)
    if not form.is_valid():
        return _Refused(form)
    try:
        new_session = portal_password_change(
            member=session.portal_user,
            current_password=form.cleaned_data["current_password"],
            password=form.cleaned_data["password"],
            **client_details(request),
        )
    except ApplicationError as exc:
        _field_errors(form, exc)
        return _Refused(form)
    response = _redirect("/account", done="password")
    browser_session_start(response, portal=portal, session=new_session)  # this browser stays signed in
    return response


def _account_end_session(request: HttpRequest, portal: Portal, session: PortalSession) -> HttpResponse | _Refused:
    # One ended meanwhile, or never this member's, is no error: the list shows what is left.
    _session_end(session_id=request.POST.get("session_id", ""), portal_user=session.portal_user)
    return _redirect("/account", done="ended")


def _account_end_others(request: HttpRequest, portal: Portal, session: PortalSession) -> HttpResponse | _Refused:
    portal_user_sessions_end_others(member=session.portal_user, keep_session_id=session.id)
    return _redirect("/account", done="ended_others")


_ACCOUNT_ACTIONS: dict[str, Callable[[HttpRequest, Portal, PortalSession], HttpResponse | _Refused]] = {
    "name": _account_name,
    "password": _account_password,
    "end_session": _account_end_session,
    "end_others": _account_end_others,
}
