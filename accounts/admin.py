"""Organizations and their members in the admin: read-only, scoped to the organizations the caller administers.

Organizations and memberships are made by `create_org` (operators); the admin shows them.
"""

from typing import TypedDict

from django.contrib import admin
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django_stubs_ext import WithAnnotations

from accounts.models import Organization, OrgMembership
from portalsite.admin_site import (
    ScopedModelAdmin,
    ScopedRelatedFilter,
    admin_site,
    request_admin_site_organization_ids,
    request_is_operator,
)


class _Counts(TypedDict):
    admin_portal_count: int
    admin_member_count: int


@admin.register(Organization, site=admin_site)
class OrganizationAdmin(ScopedModelAdmin[Organization]):
    list_display = ["name", "slug", "environment", "portal_count", "member_count", "audit_log", "created_at"]
    list_filter = ["environment"]
    search_fields = ["name", "slug"]
    ordering = ["name"]
    fields = ["name", "slug", "environment", "created_at"]
    readonly_fields = ["created_at"]

    def scope(self, request: HttpRequest, queryset: QuerySet[Organization]) -> QuerySet[Organization]:
        if not request_is_operator(request):
            queryset = queryset.filter(pk__in=request_admin_site_organization_ids(request))
        return queryset.annotate(
            admin_portal_count=Count("portals", filter=Q(portals__is_spare=False), distinct=True),
            admin_member_count=Count("memberships", distinct=True),
        )

    def in_scope(self, request: HttpRequest, obj: Organization) -> bool:
        return request_is_operator(request) or obj.pk in request_admin_site_organization_ids(request)

    @admin.display(description="portals", ordering="admin_portal_count")
    def portal_count(self, organization: "WithAnnotations[Organization, _Counts]") -> str:
        url = reverse("admin:portals_portal_changelist", current_app=self.admin_site.name)
        return format_html(
            '<a href="{}?organization__id__exact={}">{}</a>', url, organization.pk, organization.admin_portal_count
        )

    @admin.display(description="audit log")
    def audit_log(self, organization: Organization) -> str:
        # The events app's page, by URL name: that app sits above this one and is not imported.
        url = reverse("admin:events_auditevent_changelist", current_app=self.admin_site.name)
        return format_html('<a href="{}?organization_id={}">events</a>', url, organization.pk)

    @admin.display(description="members", ordering="admin_member_count")
    def member_count(self, organization: "WithAnnotations[Organization, _Counts]") -> str:
        url = reverse("admin:accounts_orgmembership_changelist", current_app=self.admin_site.name)
        return format_html(
            '<a href="{}?organization__id__exact={}">{}</a>', url, organization.pk, organization.admin_member_count
        )


@admin.register(OrgMembership, site=admin_site)
class OrgMembershipAdmin(ScopedModelAdmin[OrgMembership]):
    list_display = ["email", "name", "organization", "role", "created_at"]
    list_filter = ["role", ("organization", ScopedRelatedFilter)]
    list_select_related = ["user", "organization"]
    search_fields = ["user__email", "user__name", "organization__name"]
    ordering = ["organization__name", "user__email"]
    fields = ["user", "organization", "role", "created_at"]
    readonly_fields = ["created_at"]

    def scope(self, request: HttpRequest, queryset: QuerySet[OrgMembership]) -> QuerySet[OrgMembership]:
        if request_is_operator(request):
            return queryset
        return queryset.filter(organization_id__in=request_admin_site_organization_ids(request))

    def in_scope(self, request: HttpRequest, obj: OrgMembership) -> bool:
        return request_is_operator(request) or obj.organization_id in request_admin_site_organization_ids(request)

    @admin.display(description="e-mail", ordering="user__email")
    def email(self, membership: OrgMembership) -> str:
        return membership.user.email

    @admin.display(description="name", ordering="user__name")
    def name(self, membership: OrgMembership) -> str:
        return membership.user.name
