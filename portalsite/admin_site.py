"""The Django admin at /admin/ on the main hosts: org admins manage their own organizations' portals,
operators (superusers) see everything.

Org admins hold no Django model permissions and need no `is_staff`: an admin membership is what
lets them in, and every ModelAdmin here states what each caller may do and scopes its queryset.
"""

import uuid
from collections.abc import Callable
from functools import update_wrapper
from typing import Any, TypeVar, cast

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponseBase
from django.template.response import TemplateResponse

from accounts.models import OrgMembership, User
from accounts.permissions import request_account
from portalsite.requests import request_memo

# Index and sidebar labels: the app and model names mean little to an org admin.
_APP_NAMES = {"portals": "Portals", "accounts": "Organizations", "events": "Audit log"}
_MODEL_NAMES = {"OrgMembership": "Members"}
_APP_ORDER = ["portals", "accounts", "events"]
_MODEL_ORDER = ["Portal", "Domain", "Organization", "OrgMembership"]


def admin_site_admits(user: User | AnonymousUser) -> bool:
    """Active superusers, and active users who administer at least one organization."""
    if not isinstance(user, User) or not user.is_active:
        return False
    return user.is_superuser or OrgMembership.objects.filter(user=user, role=OrgMembership.Role.ADMIN).exists()


def request_admin_site_organization_ids(request: HttpRequest) -> frozenset[uuid.UUID]:
    """The organizations the caller administers (any environment), read once per request."""
    return request_memo(
        request,
        "admin_organization_ids",
        lambda: frozenset(
            OrgMembership.objects.filter(user=request_account(request), role=OrgMembership.Role.ADMIN).values_list(
                "organization_id", flat=True
            )
        ),
    )


M = TypeVar("M", bound=Model)
View = TypeVar("View", bound=Callable[..., HttpResponseBase])


def request_is_operator(request: HttpRequest) -> bool:
    return bool(request.user.is_active and request.user.is_superuser)


class OrgAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin login, for org admins and superusers; anyone else gets the usual "staff account" error."""

    def confirm_login_allowed(self, user: User) -> None:
        AuthenticationForm.confirm_login_allowed(self, user)  # skips the parent's is_staff check
        if not admin_site_admits(user):
            raise ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )


class PortalsiteAdminSite(admin.AdminSite):
    site_header = "portalsite administration"
    site_title = "portalsite admin"
    index_title = "Your organizations and portals"
    site_url = None  # the main host has no home page to link to
    login_form = OrgAdminAuthenticationForm

    def has_permission(self, request: HttpRequest) -> bool:
        # Asked several times per page (view wrapper, context, sidebar): one query per request.
        return request_memo(request, "admin_site_admits", lambda: admin_site_admits(request.user))

    def admin_view(self, view: View, cacheable: bool = False) -> View:
        # Outside-the-scope objects raise Http404: answer with an admin page, not the API's JSON handler404.
        def view_or_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            try:
                return view(request, *args, **kwargs)
            except Http404:
                context = {**self.each_context(request), "title": "Not found"}
                return TemplateResponse(request, "admin/not_found.html", context, status=404)

        update_wrapper(view_or_not_found, view)
        return cast(View, super().admin_view(view_or_not_found, cacheable))

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        app_list = super().get_app_list(request, app_label)
        for app in app_list:
            app["name"] = _APP_NAMES.get(app["app_label"], app["name"])
            for model in app["models"]:
                model["name"] = _MODEL_NAMES.get(model["object_name"], model["name"])
            app["models"].sort(key=lambda model: _position(_MODEL_ORDER, model["object_name"]))
        return sorted(app_list, key=lambda app: (_position(_APP_ORDER, app["app_label"]), app["name"]))


def _position(order: list[str], name: str) -> int:
    return order.index(name) if name in order else len(order)


admin_site = PortalsiteAdminSite(name="admin")
# A bulk delete would skip the services (deleting a portal drops its schema): one at a time, confirmed.
admin_site.disable_action("delete_selected")


class ScopedModelAdmin(admin.ModelAdmin[M]):
    """A ModelAdmin whose get_queryset is the caller's reach, read-only unless a subclass says otherwise.

    An object outside the reach is a 404, exactly like one that does not exist: Django's default
    (a redirect with "doesn't exist") would still be an answer about another organization's data.
    """

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> M:
        obj: M | None = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404
        return obj

    def in_scope(self, request: HttpRequest, obj: M) -> bool:
        return self.get_queryset(request).filter(pk=obj.pk).exists()

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.admin_site.has_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: M | None = None) -> bool:
        return self.admin_site.has_permission(request) and (obj is None or self.in_scope(request, obj))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: M | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: M | None = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[M]:
        return self.scope(request, super().get_queryset(request))

    def scope(self, request: HttpRequest, queryset: QuerySet[M]) -> QuerySet[M]:
        """`queryset` cut down to what the caller may see."""
        raise NotImplementedError("a ScopedModelAdmin must scope its queryset")


class ScopedRelatedFilter(admin.RelatedOnlyFieldListFilter):
    """Choices from the scoped rows only (never another organization's name), and no "empty" choice:
    a nullable key such as Portal.organization is null only for rows outside every scope."""

    @property
    def include_empty_choice(self) -> bool:
        return False
