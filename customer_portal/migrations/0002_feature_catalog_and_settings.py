from typing import Any

from django.db import migrations

from customer_portal.features import feature_catalog_sync


def create_settings_row(apps: Any, schema_editor: Any) -> None:
    apps.get_model("customer_portal", "PortalSettings").objects.get_or_create(id=1)


class Migration(migrations.Migration):
    dependencies = [
        ("customer_portal", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(create_settings_row, migrations.RunPython.noop),
        migrations.RunPython(feature_catalog_sync, migrations.RunPython.noop),
    ]
