"""Portals and domains in the admin. Creating, changing and deleting a portal go through the same
services as the API; a portal's own pages (users, invitations, ...) live in portals.admin_views."""

import uuid
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html_join

from accounts.models import Organization, User
from accounts.selectors import organization_first_admin
from portals.admin_forms import PortalChangeForm, PortalCreateForm, form_errors_from
from portals.admin_selectors import admin_portal_organizations, admin_portal_scope
from portals.admin_views import PORTAL_VIEWS, PortalView
from portals.domain_verification import challenge_name, custom_domain_verify
from portals.models import Domain, Portal
from portals.selectors import portal_user_counts
from portals.services import UNSET, portal_create, portal_delete, portal_host, portal_update
from portalsite.admin_site import ScopedModelAdmin, ScopedRelatedFilter, admin_site, request_is_operator
from portalsite.errors import ApplicationError

_MANAGE_LINKS = [("users", "Users"), ("invitations", "Invitations"), ("features", "Features"),
                 ("settings", "Settings"), ("sessions", "Sessions")]  # fmt: skip


def request_portal_organization_ids(request: HttpRequest) -> frozenset[uuid.UUID]:
    """Organizations whose portals the caller manages (production ones it administers), once per request."""
    cached = getattr(request, "_portal_organization_ids", None)
    if cached is None:
        cached = frozenset(admin_portal_organizations(user=request.user).values_list("id", flat=True))
        request._portal_organization_ids = cached  # type: ignore[attr-defined]
    return cached


def portal_in_scope(request: HttpRequest, portal: Portal) -> bool:
    """The object-level twin of `admin_portal_scope`, without a query per object."""
    if portal.is_spare or portal.organization_id is None:
        return False
    return request_is_operator(request) or portal.organization_id in request_portal_organization_ids(request)


def _custom_domain(portal: Portal) -> str | None:
    return next((domain.domain for domain in portal.domains.all() if domain.is_custom), None)


def _custom_domain_row(portal: Portal) -> Domain | None:
    return next((domain for domain in portal.domains.all() if domain.is_custom), None)


@admin.register(Portal, site=admin_site)
class PortalAdmin(ScopedModelAdmin):
    list_display = ["name", "organization", "host", "custom_domain", "user_count", "manage", "created_at"]
    list_display_links = ["name"]
    list_filter = [("organization", ScopedRelatedFilter)]
    list_select_related = ["organization"]
    search_fields = ["name", "slug", "domains__domain"]
    ordering = ["-created_at"]

    # Scope and permissions -------------------------------------------------------------------

    def scope(self, request: HttpRequest, queryset: QuerySet[Portal]) -> QuerySet[Portal]:
        scoped = queryset.filter(pk__in=admin_portal_scope(user=request.user).values("pk"))
        return scoped.select_related("organization").prefetch_related("domains")

    def in_scope(self, request: HttpRequest, obj: Portal) -> bool:
        return portal_in_scope(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.admin_site.has_permission(request) and bool(request_portal_organization_ids(request))

    def has_change_permission(self, request: HttpRequest, obj: Portal | None = None) -> bool:
        return self.has_view_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Portal | None = None) -> bool:
        return self.has_view_permission(request, obj)

    # Change list -----------------------------------------------------------------------------

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        changelist = super().get_changelist_instance(request)
        # Users live in each portal's schema: one UNION query for the page, not one per row.
        counts = portal_user_counts(portals=changelist.result_list)
        for portal in changelist.result_list:
            portal.admin_user_count = counts.get(portal.id, 0)
        return changelist

    @admin.display(description="host")
    def host(self, portal: Portal) -> str:
        return portal_host(portal.slug)

    @admin.display(description="custom domain")
    def custom_domain(self, portal: Portal) -> str:
        domain = _custom_domain_row(portal)
        return f"{domain.domain} ({domain.verification_status})" if domain else "-"

    @admin.display(description="users")
    def user_count(self, portal: Portal) -> int:
        return getattr(portal, "admin_user_count", 0)

    @admin.display(description="manage")
    def manage(self, portal: Portal) -> str:
        return format_html_join(
            " · ", '<a href="{}">{}</a>', ((self._portal_url(name, portal), label) for name, label in _MANAGE_LINKS)
        )

    # Add and change: the services decide ------------------------------------------------------

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        portal = None if object_id is None else self.get_object(request, unquote(object_id))  # 404 outside the scope
        if not (self.has_add_permission(request) if portal is None else self.has_change_permission(request, portal)):
            raise PermissionDenied
        organizations = admin_portal_organizations(user=request.user)
        data = request.POST if request.method == "POST" else None
        if portal is None:
            form: PortalCreateForm | PortalChangeForm = PortalCreateForm(
                data, organizations=organizations, initial=self._create_initial(organizations)
            )
        else:
            form = PortalChangeForm(data, initial={"name": portal.name, "custom_domain": _custom_domain(portal) or ""})
        if data is not None and form.is_valid():
            try:
                saved, message = self._save(request, form, portal)
            except ApplicationError as exc:
                form_errors_from(form, exc, fields={"organization_id": "organization"})
            else:
                if portal is None:
                    self.log_addition(request, saved, message)
                    return self.response_add(request, saved)
                self.log_change(request, saved, message)
                return self.response_change(request, saved)
        admin_form = helpers.AdminForm(form, [(None, {"fields": list(form.fields)})], {}, model_admin=self)
        manage_links = [(self._portal_url(name, portal), label) for name, label in _MANAGE_LINKS] if portal else []
        context = {
            **self.admin_site.each_context(request),
            "title": "Add portal" if portal is None else "Change portal",
            "subtitle": None if portal is None else str(portal),
            "adminform": admin_form,
            "object_id": object_id,
            "original": portal,
            "is_popup": False,
            "to_field": None,
            "media": self.media + admin_form.media,
            "inline_admin_formsets": [],
            "errors": helpers.AdminErrorList(form, []),
            "preserved_filters": self.get_preserved_filters(request),
            "portal_facts": self._facts(portal) if portal is not None else None,
            "custom_domain": self._custom_domain_context(portal) if portal is not None else None,
            "manage_links": manage_links,
            **(extra_context or {}),
        }
        return self.render_change_form(
            request, context, add=portal is None, change=portal is not None, obj=portal, form_url=form_url
        )

    def _create_initial(self, organizations: QuerySet) -> dict[str, Any]:
        only = list(organizations.values_list("id", flat=True)[:2])
        return {"organization": only[0]} if len(only) == 1 else {}

    def _save(
        self, request: HttpRequest, form: PortalCreateForm | PortalChangeForm, portal: Portal | None
    ) -> tuple[Portal, str]:
        data = form.cleaned_data
        if portal is None:
            organization = data["organization"]
            # An operator acts for the organization's admin, as `create_portal` does.
            acting = request.user if not request_is_operator(request) else self._organization_admin(organization)
            created = portal_create(
                admin=acting,
                name=data["name"],
                slug=data["slug"] or None,
                custom_domain=data["custom_domain"] or None,
                organization_id=organization.id,
            )
            extra = f" with custom domain {data['custom_domain']}" if data["custom_domain"] else ""
            return created, f"Created portal {created.slug} in {organization.name}{extra}"
        changes = [name for name in form.changed_data if name in ("name", "custom_domain")]
        updated = portal_update(
            portal=portal,
            name=data["name"] if "name" in changes else None,
            custom_domain=(data["custom_domain"] or None) if "custom_domain" in changes else UNSET,
        )
        described = []
        if "name" in changes:
            described.append(f"renamed to {updated.name!r}")
        if "custom_domain" in changes:
            domain = data["custom_domain"]
            described.append(f"custom domain set to {domain}" if domain else "custom domain removed")
        return updated, f"Changed portal {updated.slug}: {', '.join(described) or 'nothing changed'}"

    def _organization_admin(self, organization: Organization) -> User:
        admin_user = organization_first_admin(organization=organization)
        if admin_user is None:
            raise PermissionDenied  # admin_portal_organizations offers only organizations with an admin
        return admin_user

    def _facts(self, portal: Portal) -> list[tuple[str, str]]:
        counts = portal_user_counts(portals=[portal])
        return [
            ("Organization", str(portal.organization)),
            ("Slug", portal.slug),
            ("Host", portal_host(portal.slug)),
            ("Custom domain", _custom_domain(portal) or "-"),
            ("Schema", portal.schema_name),
            ("Users", str(counts.get(portal.id, 0))),
        ]

    def _custom_domain_context(self, portal: Portal) -> dict[str, Any] | None:
        domain = _custom_domain_row(portal)
        if domain is None:
            return None
        return {
            "domain": domain.domain,
            "status": domain.verification_status,
            "record_name": challenge_name(domain.domain),
            "record_value": domain.verification_token,
            "checked_at": domain.verification_checked_at,
            "error": domain.verification_error,
            "verify_url": self._portal_url("verify_domain", portal),
        }

    def verify_domain_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST: look the portal's TXT record up now (the "Check now" button), then back to the change page."""
        portal = self.get_object(request, unquote(object_id))  # None outside the caller's reach
        if portal is None or not self.has_change_permission(request, portal):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        domain = custom_domain_verify(portal=portal)
        if domain is None:
            self.message_user(request, "This portal has no custom domain.", messages.WARNING)
        elif domain.verification_status == Domain.VerificationStatus.VERIFIED:
            message = f"The custom domain {domain.domain} is verified: it now serves the portal."
            self.message_user(request, message, messages.SUCCESS)
            self.log_change(request, portal, f"Checked custom domain {domain.domain}: verified")
        else:
            message = f"The custom domain {domain.domain} is still {domain.verification_status}: "
            self.message_user(request, message + domain.verification_error, messages.WARNING)
        info = self.opts.app_label, self.opts.model_name
        return HttpResponseRedirect(reverse("admin:{}_{}_change".format(*info), args=[portal.pk]))

    # Delete: one portal at a time, through portal_delete --------------------------------------

    def get_deleted_objects(
        self, objs: Iterable[Portal], request: HttpRequest
    ) -> tuple[list[str], dict[str, int], set[str], list[str]]:
        # The collector would walk Domain rows only and ask for domain permissions; the schema is the point.
        portals = list(objs)
        domains = sum(len(portal.domains.all()) for portal in portals)
        return [str(portal) for portal in portals], {"portals": len(portals), "domains": domains}, set(), []

    def render_delete_form(self, request: HttpRequest, context: dict[str, Any]) -> TemplateResponse:
        portal = context["object"]
        context.update(
            title=f"Delete portal {portal.name}?",
            portal_facts=self._facts(portal),
            hosts=[domain.domain for domain in portal.domains.all()],
        )
        return super().render_delete_form(request, context)

    def log_deletions(self, request: HttpRequest, queryset: Iterable[Portal]) -> list[LogEntry]:
        return [
            LogEntry.objects.log_actions(
                user_id=request.user.pk,
                queryset=[portal],
                action_flag=DELETION,
                change_message=f"Deleted portal {portal.slug}; dropped schema {portal.schema_name} with all its data",
                single_object=True,
            )
            for portal in queryset
        ]

    def delete_model(self, request: HttpRequest, obj: Portal) -> None:
        portal_delete(portal=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Portal]) -> None:
        # Unused while bulk delete is disabled; should it come back, it still goes through the service.
        for portal in queryset:
            portal_delete(portal=portal)

    # A portal's own pages -----------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        custom = [
            path(f"<str:object_id>/{name}/", self._portal_view(view), name="{}_{}_{}".format(*info, name))
            for name, view in PORTAL_VIEWS.items()
        ]
        custom.append(
            path(
                "<str:object_id>/verify-domain/",
                self.admin_site.admin_view(self.verify_domain_view),
                name="{}_{}_verify_domain".format(*info),
            )
        )
        return custom + super().get_urls()  # before the default "<path:object_id>/" catch-all

    def _portal_view(self, view: PortalView) -> Callable[..., HttpResponse]:
        def wrapper(request: HttpRequest, object_id: str) -> HttpResponse:
            portal = self.get_object(request, unquote(object_id))  # 404 outside the caller's reach
            if not self.has_change_permission(request, portal):
                raise PermissionDenied
            return view(self, request, portal)

        wrapper.__name__ = view.__name__
        return self.admin_site.admin_view(wrapper)

    def _portal_url(self, name: str, portal: Portal) -> str:
        info = self.opts.app_label, self.opts.model_name, name
        return reverse("admin:{}_{}_{}".format(*info), args=[portal.pk], current_app=self.admin_site.name)


@admin.register(Domain, site=admin_site)
class DomainAdmin(ScopedModelAdmin):
    """Read-only: a portal's domains change through the portal (its default one never does)."""

    list_display = ["domain", "portal", "is_primary", "is_custom"]
    list_filter = ["is_custom", ("tenant", ScopedRelatedFilter)]
    list_select_related = ["tenant"]
    search_fields = ["domain", "tenant__name", "tenant__slug"]
    ordering = ["domain"]
    fields = ["domain", "tenant", "is_primary", "is_custom"]

    def scope(self, request: HttpRequest, queryset: QuerySet[Domain]) -> QuerySet[Domain]:
        return queryset.filter(tenant__in=admin_portal_scope(user=request.user).values("pk"))

    def in_scope(self, request: HttpRequest, obj: Domain) -> bool:
        return portal_in_scope(request, obj.tenant)

    @admin.display(description="portal", ordering="tenant__name")
    def portal(self, domain: Domain) -> Portal:
        return domain.tenant
