"""The audit log in the admin: every event of the caller's organizations (operators: all), read-only, with
filters by organization, action, actor and interface. A portal's own trail is a tab of its pages
(`customer_portal.admin_views.portal_audit_view`)."""

import uuid
from typing import Any

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import Organization
from events.models import AuditEvent
from events.selectors import audit_event_counts
from portalsite.admin_site import (
    ScopedModelAdmin,
    admin_site,
    request_admin_site_organization_ids,
    request_is_operator,
)


def _organization_ids(request: HttpRequest) -> frozenset[uuid.UUID] | None:
    """The organizations whose events the caller sees; None: every one (an operator)."""
    return None if request_is_operator(request) else request_admin_site_organization_ids(request)


class OrganizationFilter(admin.SimpleListFilter):
    """By organization: only the caller's (events name organizations by id, not by a foreign key)."""

    title = "organization"
    parameter_name = "organization_id"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        organizations = Organization.objects.order_by("name")
        ids = _organization_ids(request)
        if ids is not None:
            organizations = organizations.filter(id__in=ids)
        return [(str(organization.id), organization.name) for organization in organizations]

    def queryset(self, request: HttpRequest, queryset: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        value = self.value()
        if not value:
            return queryset
        try:
            return queryset.filter(organization_id=uuid.UUID(value))
        except ValueError:
            return queryset.none()


class ActorFilter(admin.SimpleListFilter):
    """By actor: the e-mails that acted on the caller's organizations (the most active first)."""

    title = "actor"
    parameter_name = "actor"
    shown = 30

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        counts = audit_event_counts(model_admin.get_queryset(request).exclude(actor_email=""), "actor_email")
        return [(email, f"{email} ({count})") for email, count in counts[: self.shown]]

    def queryset(self, request: HttpRequest, queryset: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        value = self.value()
        return queryset.filter(actor_email__iexact=value) if value else queryset


@admin.register(AuditEvent, site=admin_site)
class AuditEventAdmin(ScopedModelAdmin[AuditEvent]):
    list_display = ["occurred_at", "action", "actor", "via", "target", "organization", "portal_id", "ip_address"]
    list_filter = [OrganizationFilter, "action", ActorFilter, "actor_type", "via"]
    search_fields = ["actor_email", "target_label", "target_id", "=portal_id"]
    ordering = ["-occurred_at", "-seq"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False  # a count of the whole trail on every page would grow with it
    fields = [
        "occurred_at", "action", "organization_id", "portal_id", "actor_type", "actor_id", "actor_email", "via",
        "ip_address", "user_agent", "target_type", "target_id", "target_label", "changes", "request_id", "seq",
        "prev_hash", "hash",
    ]  # fmt: skip

    def scope(self, request: HttpRequest, queryset: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        ids = _organization_ids(request)
        return queryset if ids is None else queryset.filter(organization_id__in=ids)

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        changelist = super().get_changelist_instance(request)
        # Organizations by id for the page: one query, not one per row.
        wanted = {event.organization_id for event in changelist.result_list}
        names = dict(Organization.objects.filter(id__in=wanted).values_list("id", "name"))
        for event in changelist.result_list:
            event.admin_organization = names.get(event.organization_id, str(event.organization_id))
        return changelist

    @admin.display(description="actor", ordering="actor_email")
    def actor(self, event: AuditEvent) -> str:
        return event.actor_email or event.actor_type

    @admin.display(description="target")
    def target(self, event: AuditEvent) -> str:
        return f"{event.target_type} {event.target_label}".strip()

    @admin.display(description="organization")
    def organization(self, event: AuditEvent) -> str:
        return str(getattr(event, "admin_organization", event.organization_id))


from events import webhook_admin  # noqa: E402, F401  (registers the webhook pages: events/webhook_admin.py)
