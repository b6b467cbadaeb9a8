"""The feature catalog: every portal has one `Feature` row per entry.

Adding an entry: add it here and a data migration that calls `feature_catalog_sync`
(as 0002 does), so that it reaches every existing portal and every spare schema.
"""

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CatalogFeature:
    key: str
    name: str
    description: str
    enabled_by_default: bool


FEATURE_CATALOG: dict[str, CatalogFeature] = {
    feature.key: feature
    for feature in [
        CatalogFeature("documents", "Documents", "Share files and documents with portal users.", True),
        CatalogFeature("invoices", "Invoices", "Let portal users view and download their invoices.", True),
        CatalogFeature("support_tickets", "Support tickets", "Portal users open and follow support requests.", True),
        CatalogFeature("knowledge_base", "Knowledge base", "Self-service articles and answers.", False),
        CatalogFeature("chat", "Chat", "Live chat between portal users and your team.", False),
    ]
}


def feature_catalog_sync(apps: Any, schema_editor: Any) -> None:
    """Data-migration body: insert the catalog entries this schema lacks (existing rows keep their state)."""
    feature_model = apps.get_model("customer_portal", "Feature")
    existing = set(feature_model.objects.values_list("key", flat=True))
    feature_model.objects.bulk_create(
        feature_model(key=feature.key, enabled=feature.enabled_by_default)
        for feature in FEATURE_CATALOG.values()
        if feature.key not in existing
    )
