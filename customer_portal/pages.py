"""Server-rendered pages on portal hosts: the portal's home page and invitation acceptance.

Plain Django views with a CSRF-protected form; the JSON API lives in customer_portal/api.
The URLconf (customer_portal/page_urls.py) is included by portal hosts only.
"""

from typing import Any

from django import forms
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe
from django_tenants.utils import get_public_schema_name
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.api.throttles import AuthRateThrottle
from accounts.models import User
from customer_portal.models import Invitation
from customer_portal.selectors import feature_list, portal_settings_get
from customer_portal.services import (
    INVALID_INVITATION,
    invitation_accept,
    invitation_get_by_token,
    portal_session_end,
)
from portals.models import Portal
from portalsite.errors import ApplicationError, NotFoundError

MAX_TOKEN_LENGTH = 200
EXISTING_ACCOUNT_NOTICE = "You already have an account: enter its password."
PASSWORDS_DIFFER = "The two passwords do not match."
TOO_MANY_ATTEMPTS = "Too many attempts from your network. Try again in {seconds} seconds."


# Inline CSS only and no scripts: a stored value that slipped past validation still cannot run code.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


class InvitationAcceptForm(forms.Form):
    """Name and a new password (twice) for a new account; only the password for an existing one."""

    name = forms.CharField(label="Your name", max_length=150)
    password = forms.CharField(
        label="Choose a password",
        max_length=1024,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password_confirm = forms.CharField(
        label="Repeat the password",
        max_length=1024,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, *args: Any, existing_account: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.existing_account = existing_account
        if existing_account:
            del self.fields["name"]
            del self.fields["password_confirm"]
            self.fields["password"].label = "Password of your account"
            self.fields["password"].widget.attrs["autocomplete"] = "current-password"

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        password, confirm = cleaned.get("password"), cleaned.get("password_confirm")
        if not self.existing_account and password is not None and confirm is not None and password != confirm:
            self.add_error("password_confirm", PASSWORDS_DIFFER)
        return cleaned


class _AcceptThrottle(AuthRateThrottle):
    """The accept API's per-IP budget (same cache key), so the form is no way around it.
    Keyed by address even for a signed-in browser: the form checks an account's password."""

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


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


def _page(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    response = render(request, f"customer_portal/{template}", context, status=status)
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    # Invitation URLs carry a secret: never send them on to another site.
    response["Referrer-Policy"] = "no-referrer"
    return response


def _home(request: HttpRequest, portal: Portal, **extra: Any) -> HttpResponse:
    features = [feature for feature in feature_list() if feature.enabled]
    return _page(request, "home.html", {**_branding(portal), "features": features, **extra})


def _invalid(request: HttpRequest, portal: Portal) -> HttpResponse:
    return _page(request, "invite_invalid.html", {**_branding(portal), "message": INVALID_INVITATION}, status=404)


def _invitation(token: str) -> Invitation | None:
    if len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        return invitation_get_by_token(token=token)
    except NotFoundError:
        return None


def _form_page(
    request: HttpRequest, portal: Portal, invitation: Invitation, form: InvitationAcceptForm, status: int = 200
) -> HttpResponse:
    context = {
        **_branding(portal),
        "email": invitation.portal_user.email,
        "form": form,
        "existing_account": form.existing_account,
        "existing_account_notice": EXISTING_ACCOUNT_NOTICE,
    }
    return _page(request, "invite.html", context, status=status)


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    """The portal's public face: branding, welcome message and enabled features; nothing about anyone."""
    return _home(request, _portal(request))


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def invite(request: HttpRequest, token: str) -> HttpResponse:
    """Accept an invitation: any token that is not a live invitation gets the same neutral 404 page."""
    portal = _portal(request)
    invitation = _invitation(token)
    if invitation is None:
        return _invalid(request, portal)
    existing_account = User.objects.filter(email__iexact=invitation.portal_user.email).exists()
    if request.method != "POST":
        form = InvitationAcceptForm(existing_account=existing_account, initial={"name": invitation.portal_user.name})
        return _form_page(request, portal, invitation, form)

    form = InvitationAcceptForm(request.POST, existing_account=existing_account)
    throttle = _AcceptThrottle()
    if not throttle.allow_request(Request(request), APIView()):  # a DRF throttle outside a DRF view
        seconds = max(1, round(throttle.wait() or 1))
        form.add_error(None, TOO_MANY_ATTEMPTS.format(seconds=seconds))
        response = _form_page(request, portal, invitation, form, status=429)
        response["Retry-After"] = str(seconds)
        return response
    if not form.is_valid():
        return _form_page(request, portal, invitation, form, status=422)
    try:
        with transaction.atomic():
            account, session = invitation_accept(
                portal=portal,
                token=token,
                password=form.cleaned_data["password"],
                name=form.cleaned_data.get("name", ""),
                ip_address=request.META.get("REMOTE_ADDR") or None,
                user_agent=request.META.get("HTTP_USER_AGENT", ""),
            )
            # This page hands out no tokens, so the session opened by accepting could never be used:
            # end it rather than leave a phantom "active session" in the admin's list.
            portal_session_end(session_id=session.id, by_its_user=True)
    except NotFoundError:
        return _invalid(request, portal)
    except ApplicationError as exc:
        for error in exc.field_errors:
            field = str(error.loc[-1]) if error.loc else None
            form.add_error(field if field in form.fields else None, error.msg)
        if not exc.field_errors:
            form.add_error(None, exc.message)
        return _form_page(request, portal, invitation, form, status=422 if exc.field_errors else exc.status)
    return _home(request, portal, welcome_name=account.name, accepted=True)
