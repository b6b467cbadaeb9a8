"""Webhook endpoints and their deliveries in the admin: the caller's organizations' (operators: all), read-only.
Changes go through the API (`/v1/webhooks`), which shows the secret once; the admin never shows it."""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from events.admin import _organization_ids  # the audit log's scope: the same organizations (this app's own)
from events.webhook_models import WebhookDelivery, WebhookEndpoint
from portalsite.admin_site import ScopedModelAdmin, admin_site


@admin.register(WebhookEndpoint, site=admin_site)
class WebhookEndpointAdmin(ScopedModelAdmin[WebhookEndpoint]):
    list_display = ["url", "organization", "portal_id", "events", "enabled", "failing_since", "created_at"]
    list_filter = ["enabled"]
    list_select_related = ["organization"]
    search_fields = ["url", "description"]
    fields = [
        "organization",
        "portal_id",
        "url",
        "events",
        "description",
        "enabled",
        "disabled_reason",
        "failing_since",
        "previous_secret_expires_at",
        "created_at",
        "updated_at",
        "deliveries",
    ]  # fmt: skip  (never the secret)

    def scope(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> QuerySet[WebhookEndpoint]:
        ids = _organization_ids(request)
        return queryset if ids is None else queryset.filter(organization_id__in=ids)

    @admin.display(description="deliveries")
    def deliveries(self, endpoint: WebhookEndpoint) -> str:
        url = reverse("admin:events_webhookdelivery_changelist", current_app=self.admin_site.name)
        return format_html('<a href="{}?endpoint__id__exact={}">Its deliveries, newest first</a>', url, endpoint.pk)


@admin.register(WebhookDelivery, site=admin_site)
class WebhookDeliveryAdmin(ScopedModelAdmin[WebhookDelivery]):
    list_display = ["event_type", "endpoint", "status", "attempts", "response_status", "last_attempt_at", "created_at"]
    list_filter = ["status", "event_type"]
    list_select_related = ["endpoint"]
    search_fields = ["=event_id"]
    ordering = ["-created_at", "-id"]
    show_full_result_count = False
    fields = [
        "endpoint", "event_id", "event_type", "status", "attempts", "response_status", "last_attempt_at",
        "next_attempt_at", "created_at",
    ]  # fmt: skip

    def scope(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> QuerySet[WebhookDelivery]:
        ids = _organization_ids(request)
        return queryset if ids is None else queryset.filter(endpoint__organization_id__in=ids)
