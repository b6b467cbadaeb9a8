from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate

from portalsite.db import tenant_connection


def _prepare_public_schema(**kwargs: Any) -> None:
    from django.core.management import call_command
    from django_tenants.utils import get_public_schema_name

    from portals.services import public_tenant_ensure

    # migrate_schemas sends post_migrate once per schema; these belong to the public run.
    if tenant_connection.schema_name != get_public_schema_name():
        return
    public_tenant_ensure()
    call_command("createcachetable", verbosity=0)  # the database cache used when REDIS_URL is unset


class PortalsConfig(AppConfig):
    name = "portals"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(_prepare_public_schema, sender=self)
