import uuid

from django.db import models
from django_tenants.models import DomainMixin, TenantMixin

from accounts.models import Organization


class Portal(TenantMixin):
    """A customer portal: one PostgreSQL schema, reached through its domains.

    The public schema has a row too (organization null): django-tenants' tooling expects it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="portals"
    )
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=63, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Schemas are created and dropped by portals.services, inside the same transaction as the rows.
    auto_create_schema = False
    auto_drop_schema = False

    def __str__(self) -> str:
        return self.name


class Domain(DomainMixin):
    """A host name routed to a portal (its default `<slug>.<PORTAL_BASE_DOMAIN>` or a custom one)."""

    def __str__(self) -> str:
        return self.domain
