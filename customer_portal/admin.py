"""The portal admin as registered: `portals.admin.PortalAdmin` plus what each portal's own schema holds
(its user count in the list and on the change page, and its pages in `customer_portal.admin_views`)."""

from collections.abc import Callable

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html_join

from customer_portal.admin_views import PORTAL_VIEWS, PortalView
from customer_portal.selectors import portal_user_counts
from portals import admin as portals_admin
from portals.models import Portal
from portalsite.admin_site import admin_site

_MANAGE_LINKS = [("users", "Users"), ("invitations", "Invitations"), ("features", "Features"),
                 ("settings", "Settings"), ("sessions", "Sessions"), ("audit", "Audit log")]  # fmt: skip


@admin.register(Portal, site=admin_site)
class PortalAdmin(portals_admin.PortalAdmin):
    list_display = ["name", "organization", "host", "custom_domain", "user_count", "migrations", "manage", "created_at"]

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        changelist = super().get_changelist_instance(request)
        # Users live in each portal's schema: one UNION query for the page, not one per row.
        counts = portal_user_counts(portals=changelist.result_list)
        for portal in changelist.result_list:
            portal.admin_user_count = counts.get(portal.id, 0)
        return changelist

    @admin.display(description="users")
    def user_count(self, portal: Portal) -> int:
        return getattr(portal, "admin_user_count", 0)

    @admin.display(description="manage")
    def manage(self, portal: Portal) -> str:
        return format_html_join(" · ", '<a href="{}">{}</a>', self.manage_links(portal))

    def portal_facts(self, portal: Portal) -> list[tuple[str, str]]:
        users = portal_user_counts(portals=[portal]).get(portal.id, 0)
        return [*super().portal_facts(portal), ("Users", str(users))]

    def manage_links(self, portal: Portal) -> list[tuple[str, str]]:
        return [(self._portal_url(name, portal), label) for name, label in _MANAGE_LINKS]

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        custom = [
            path(f"<str:object_id>/{name}/", self._portal_view(view), name="{}_{}_{}".format(*info, name))
            for name, view in PORTAL_VIEWS.items()
        ]
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
