from typing import Any

from django.apps import AppConfig


def _end_portal_sessions(sender: Any, *, user_id: Any, **kwargs: Any) -> None:
    from customer_portal.services import account_portal_sessions_end

    account_portal_sessions_end(user_id=user_id)


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
        from accounts.signals import account_signed_out_everywhere

        # "Log out everywhere" and a password change end the account's sessions in every portal too.
        account_signed_out_everywhere.connect(_end_portal_sessions, dispatch_uid="customer_portal.end_sessions")
