"""The org admins' forgotten-password pages on the main host: Django's own reset views, in the admin's look,
with the e-mail sent by a job (accounts.password_reset) and every other sign-in ended by the reset."""

from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse_lazy

from accounts.api.throttles import email_throttle_wait
from accounts.password_reset import SEPARATOR
from accounts.services import account_password_reset_request, account_sign_out_everywhere
from portalsite.admin_site import admin_site
from portalsite.hostnames import request_hostname


class AccountPasswordResetForm(PasswordResetForm):
    """Django's form; `save` queues the e-mail job instead of sending from the request, within the address's
    e-mail budget (EMAIL_THROTTLE_RATE, shared with the API and the portal pages)."""

    def save(  # type: ignore[override]  # Django's many e-mail options are the job's business here
        self, *, request: HttpRequest | None = None, **kwargs: Any
    ) -> None:
        assert request is not None
        email = self.cleaned_data["email"]
        if email_throttle_wait(email=email, request=request) is not None:
            return  # past EMAIL_THROTTLE_RATE for this address: no more mail; the page says what it always says
        account_password_reset_request(email=email, host=request_hostname(request))


class _InTheAdmin:
    """The admin site's context (header, title) around Django's registration templates."""

    request: HttpRequest

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context: dict[str, Any] = super().get_context_data(**kwargs)  # type: ignore[misc]
        return {**admin_site.each_context(self.request), **context}


class PasswordResetView(_InTheAdmin, auth_views.PasswordResetView):
    form_class = AccountPasswordResetForm
    success_url = reverse_lazy("password_reset_done")


class PasswordResetDoneView(_InTheAdmin, auth_views.PasswordResetDoneView):
    pass


class PasswordResetConfirmView(_InTheAdmin, auth_views.PasswordResetConfirmView):
    """Django's confirm view behind the one-segment link `/password/reset/<uidb64>.<token>` (API.md)."""

    success_url = reverse_lazy("password_reset_complete")

    def dispatch(self, *args: Any, **kwargs: Any) -> HttpResponseBase:
        uidb64, _, token = str(kwargs.pop("token")).partition(SEPARATOR)
        return super().dispatch(*args, uidb64=uidb64, token=token, **kwargs)

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        account_sign_out_everywhere(user_id=form.user.pk)  # also for an account that never signed in here
        return response


class PasswordResetCompleteView(_InTheAdmin, auth_views.PasswordResetCompleteView):
    pass
