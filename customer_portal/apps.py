from django.apps import AppConfig


class CustomerPortalConfig(AppConfig):
    """Models that live in each portal's own schema (the django-tenants tenant app)."""

    name = "customer_portal"
    default_auto_field = "django.db.models.BigAutoField"
