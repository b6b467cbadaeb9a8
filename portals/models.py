import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django_tenants.models import DomainMixin, TenantMixin

from accounts.models import Organization, User


def portal_host(slug: str) -> str:
    """A portal's default host name: `<slug>.<PORTAL_BASE_DOMAIN>`."""
    return f"{slug}.{settings.PORTAL_BASE_DOMAIN}"


class Portal(TenantMixin):
    """A customer portal: one PostgreSQL schema, reached through its domains.

    The public schema and the spare schemas have rows too (organization null): a tenant
    row is what makes `migrate_schemas` migrate a schema, so spares never drift.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="portals"
    )
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=63, unique=True)
    # A pre-migrated schema waiting in the pool (portals.provisioning); never routed or listed.
    is_spare = models.BooleanField(default=False)
    # Who created it; null for an operator's command (and for spares and the public tenant).
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    # Schemas are created and dropped by portals.services, inside the same transaction as the rows.
    auto_create_schema = False
    auto_drop_schema = False

    class Meta:
        indexes = [
            # Claiming a spare and counting the pool stay flat however many portals there are.
            models.Index(fields=["created_at"], condition=models.Q(is_spare=True), name="portals_portal_spares"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def default_domain(self) -> str:
        return portal_host(self.slug)

    @property
    def custom_domain(self) -> str | None:
        """The custom host name, if any (reads `domains`: prefetch it when listing portals)."""
        return next((domain.domain for domain in self.domains.all() if domain.is_custom), None)


class Domain(DomainMixin):
    """A host name routed to a portal: its default `<slug>.<PORTAL_BASE_DOMAIN>` (primary) or its custom one."""

    is_custom = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.domain
