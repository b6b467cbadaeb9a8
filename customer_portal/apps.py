from typing import Any

from django.apps import AppConfig


def _seed_portal_settings(sender: Any, *, portal: Any, **kwargs: Any) -> None:
    from customer_portal.services import portal_settings_initialize

    portal_settings_initialize(portal=portal)


class CustomerPortalConfig(AppConfig):
    """Models that live in each portal's own schema (the django-tenants tenant app)."""

    name = "customer_portal"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from portals.signals import portal_schema_ready

        # A new portal's schema gets its settings row filled inside portal_create's transaction.
        portal_schema_ready.connect(_seed_portal_settings, dispatch_uid="customer_portal.seed_settings")
