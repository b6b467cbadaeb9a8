"""Portals and domains in the admin. Creating, changing and deleting a portal go through the same
services as the API. `PortalAdmin` is registered by `customer_portal.admin`, which adds what a portal's
own schema holds (user counts, and the pages for its users, invitations, features, settings, sessions)."""

import uuid
from collections.abc import Iterable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import URLPattern, path, reverse

from accounts.models import Organization
from accounts.permissions import request_account
from portals.admin_forms import PortalChangeForm, PortalCreateForm
from portals.domain_verification import challenge_name, custom_domain_verify
from portals.models import Domain, Portal
from portals.selectors import (
    organization_list_for_portal_create,
    portal_list_for_admin_site,
    portal_migration_outcomes,
)
from portals.services import UNSET, portal_create, portal_delete, portal_update
from portalsite.admin_site import (
    ScopedModelAdmin,
    ScopedRelatedFilter,
    admin_site,
    request_is_operator,
)
from portalsite.errors import ApplicationError
from portalsite.forms import admin_form, admin_form_errors, form_errors_from
from portalsite.requests import request_memo


def request_portal_organization_ids(request: HttpRequest) -> frozenset[uuid.UUID]:
    """Organizations where the caller may manage portals (production ones it administers), once per request."""
    return request_memo(
        request,
        "portal_organization_ids",
        lambda: frozenset(
            organization_list_for_portal_create(user=request_account(request)).values_list("id", flat=True)
        ),
    )


def portal_in_scope(request: HttpRequest, portal: Portal) -> bool:
    """The object-level twin of `portal_list_for_admin_site`, without a query per object."""
    if portal.is_spare or portal.organization_id is None:
        return False
    return request_is_operator(request) or portal.organization_id in request_portal_organization_ids(request)


def _migration_fact(portal: Portal) -> str:
    outcome = portal_migration_outcomes(portals=[portal]).get(portal.id)
    return outcome.summary if outcome is not None else "- (not seen by migrate_portals yet)"


class PortalAdmin(ScopedModelAdmin[Portal]):
    list_display = ["name", "organization", "host", "custom_domain", "migrations", "created_at"]
    list_display_links = ["name"]
    list_filter = [("organization", ScopedRelatedFilter)]
    list_select_related = ["organization"]
    search_fields = ["name", "slug", "domains__domain"]
    ordering = ["-created_at"]

    # Scope and permissions -------------------------------------------------------------------

    def scope(self, request: HttpRequest, queryset: QuerySet[Portal]) -> QuerySet[Portal]:
        scoped = queryset.filter(pk__in=portal_list_for_admin_site(user=request_account(request)).values("pk"))
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
        # Outcomes of migrate_portals: one query for the page, not one per row.
        outcomes = portal_migration_outcomes(portals=changelist.result_list)
        for portal in changelist.result_list:
            portal.admin_migration = outcomes.get(portal.id)
        return changelist

    @admin.display(description="host")
    def host(self, portal: Portal) -> str:
        return portal.default_domain

    @admin.display(description="custom domain")
    def custom_domain(self, portal: Portal) -> str:
        entry = portal.custom_domain_entry
        return f"{entry.domain} ({entry.verification_status})" if entry else "-"

    @admin.display(description="migrations")
    def migrations(self, portal: Portal) -> str:
        outcome = getattr(portal, "admin_migration", None)
        return outcome.state if outcome is not None else "-"

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
        organizations = organization_list_for_portal_create(user=request_account(request))
        data = request.POST if request.method == "POST" else None
        if portal is None:
            form: PortalCreateForm | PortalChangeForm = PortalCreateForm(
                data, organizations=organizations, initial=self._create_initial(organizations)
            )
        else:
            form = PortalChangeForm(data, initial={"name": portal.name, "custom_domain": portal.custom_domain or ""})
        if data is not None and form.is_valid():
            try:
                saved = self._save(request, form, portal)  # the services record the audit events
            except ApplicationError as exc:
                form_errors_from(form, exc, fields={"organization_id": "organization"})
            else:
                return self.response_add(request, saved) if portal is None else self.response_change(request, saved)
        adminform = admin_form(self, form)
        context = {
            **self.admin_site.each_context(request),
            "title": "Add portal" if portal is None else "Change portal",
            "subtitle": None if portal is None else str(portal),
            "adminform": adminform,
            "object_id": object_id,
            "original": portal,
            "is_popup": False,
            "to_field": None,
            "media": self.media + adminform.media,
            "inline_admin_formsets": [],
            "errors": admin_form_errors(form),
            "preserved_filters": self.get_preserved_filters(request),
            "portal_facts": self.portal_facts(portal) if portal is not None else None,
            "manage_links": self.manage_links(portal) if portal is not None else [],
            "custom_domain": self._custom_domain_context(portal) if portal is not None else None,
            **(extra_context or {}),
        }
        return self.render_change_form(
            request, context, add=portal is None, change=portal is not None, obj=portal, form_url=form_url
        )

    def _create_initial(self, organizations: QuerySet[Organization]) -> dict[str, Any]:
        only = list(organizations.values_list("id", flat=True)[:2])
        return {"organization": only[0]} if len(only) == 1 else {}

    def _save(self, request: HttpRequest, form: PortalCreateForm | PortalChangeForm, portal: Portal | None) -> Portal:
        data = form.cleaned_data
        if portal is None:
            return portal_create(
                organization=data["organization"],
                created_by=request_account(request),
                name=data["name"],
                slug=data["slug"] or None,
                custom_domain=data["custom_domain"] or None,
            )
        changes = [name for name in form.changed_data if name in ("name", "custom_domain")]
        return portal_update(
            portal=portal,
            name=data["name"] if "name" in changes else None,
            custom_domain=(data["custom_domain"] or None) if "custom_domain" in changes else UNSET,
        )

    def portal_facts(self, portal: Portal) -> list[tuple[str, str]]:
        """What the change and delete pages say about a portal."""
        return [
            ("Organization", str(portal.organization)),
            ("Slug", portal.slug),
            ("Host", portal.default_domain),
            ("Custom domain", portal.custom_domain or "-"),
            ("Schema", portal.schema_name),
            ("Migrations", _migration_fact(portal)),
        ]

    def manage_links(self, portal: Portal) -> list[tuple[str, str]]:
        """(url, label) of the portal's own pages, shown above its change form."""
        return []

    # Custom domain: its TXT record and "Check now" ---------------------------------------------

    def _custom_domain_context(self, portal: Portal) -> dict[str, Any] | None:
        entry = portal.custom_domain_entry
        if entry is None:
            return None
        info = self.opts.app_label, self.opts.model_name
        return {
            "domain": entry.domain,
            "status": entry.verification_status,
            "record_name": challenge_name(entry.domain),
            "record_value": entry.verification_token,
            "checked_at": entry.verification_checked_at,
            "error": entry.verification_error,
            "verify_url": reverse(
                "admin:{}_{}_verify_domain".format(*info), args=[portal.pk], current_app=self.admin_site.name
            ),
        }

    def verify_domain_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST: look the portal's TXT record up now (the "Check now" button), then back to the change page."""
        portal = self.get_object(request, unquote(object_id))  # 404 outside the caller's reach
        if not self.has_change_permission(request, portal):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        domain = custom_domain_verify(portal=portal)
        if domain is None:
            self.message_user(request, "This portal has no custom domain.", messages.WARNING)
        elif domain.verification_status == Domain.VerificationStatus.VERIFIED:
            message = f"The custom domain {domain.domain} is verified: it now serves the portal."
            self.message_user(request, message, messages.SUCCESS)
        else:
            message = f"The custom domain {domain.domain} is still {domain.verification_status}: "
            self.message_user(request, message + domain.verification_error, messages.WARNING)
        info = self.opts.app_label, self.opts.model_name
        return HttpResponseRedirect(reverse("admin:{}_{}_change".format(*info), args=[portal.pk]))

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        verify = path(
            "<str:object_id>/verify-domain/",
            self.admin_site.admin_view(self.verify_domain_view),
            name="{}_{}_verify_domain".format(*info),
        )
        return [verify, *super().get_urls()]  # before the default "<path:object_id>/" catch-all

    # Delete: one portal at a time, through portal_delete --------------------------------------

    def get_deleted_objects(
        self, objs: Iterable[Portal], request: HttpRequest
    ) -> tuple[list[str], dict[str, int], set[str], list[str]]:
        # The collector would walk Domain rows only and ask for domain permissions; the schema is the point.
        portals = list(objs)
        domains = sum(len(portal.domains.all()) for portal in portals)
        return [str(portal) for portal in portals], {"portals": len(portals), "domains": domains}, set(), []

    def render_delete_form(self, request: HttpRequest, context: dict[str, Any]) -> HttpResponse:
        portal = context["object"]
        context.update(
            title=f"Delete portal {portal.name}?",
            portal_facts=self.portal_facts(portal),
            hosts=[domain.domain for domain in portal.domains.all()],
        )
        return super().render_delete_form(request, context)

    def log_deletions(self, request: HttpRequest, queryset: Iterable[Portal]) -> list[LogEntry]:
        return []  # portal_delete records `portal.deleted` in the audit log (events), where the trail is kept

    def delete_model(self, request: HttpRequest, obj: Portal) -> None:
        portal_delete(portal=obj)


@admin.register(Domain, site=admin_site)
class DomainAdmin(ScopedModelAdmin[Domain]):
    """Read-only: a portal's domains change through the portal (its default one never does)."""

    list_display = ["domain", "portal", "is_primary", "is_custom"]
    list_filter = ["is_custom", ("tenant", ScopedRelatedFilter)]
    list_select_related = ["tenant"]
    search_fields = ["domain", "tenant__name", "tenant__slug"]
    ordering = ["domain"]
    fields = ["domain", "tenant", "is_primary", "is_custom"]

    def scope(self, request: HttpRequest, queryset: QuerySet[Domain]) -> QuerySet[Domain]:
        return queryset.filter(tenant__in=portal_list_for_admin_site(user=request_account(request)).values("pk"))

    def in_scope(self, request: HttpRequest, obj: Domain) -> bool:
        return portal_in_scope(request, obj.tenant)

    @admin.display(description="portal", ordering="tenant__name")
    def portal(self, domain: Domain) -> Portal:
        portal: Portal = domain.tenant
        return portal
