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
    def custom_domain_entry(self) -> "Domain | None":
        """The custom domain's row, with its verification state (reads `domains`: prefetch it when listing)."""
        return next((domain for domain in self.domains.all() if domain.is_custom), None)

    @property
    def custom_domain(self) -> str | None:
        """The custom host name as set, verified or not (what org admins see and edit)."""
        entry = self.custom_domain_entry
        return entry.domain if entry else None

    @property
    def verified_custom_domain(self) -> str | None:
        """The custom host name once proven by DNS: only then does it route or appear in links."""
        entry = self.custom_domain_entry
        return entry.domain if entry is not None and entry.routes else None

    @property
    def link_domain(self) -> str:
        """The host that links to this portal use: its verified custom domain, else its default domain.

        An unproven custom domain may be anyone's server: a link to it would hand an invitation token
        (or a password typed on a look-alike page) to whoever runs it."""
        return self.verified_custom_domain or self.default_domain


class Domain(DomainMixin):
    """A host name routed to a portal: its default `<slug>.<PORTAL_BASE_DOMAIN>` (primary) or its custom one.

    A custom domain is proven by a DNS TXT record before it routes or appears in a link
    (`verification_status`); default domains and MAIN_HOSTS carry none ("").
    """

    class VerificationStatus(models.TextChoices):
        PENDING = "pending"
        VERIFIED = "verified"
        FAILED = "failed"

    is_custom = models.BooleanField(default=False)
    # "" for default domains and MAIN_HOSTS, which need no proof.
    verification_status = models.CharField(max_length=8, choices=VerificationStatus.choices, blank=True, default="")
    verification_token = models.CharField(max_length=64, blank=True, default="")
    # When the domain was (last) set: DOMAIN_VERIFY_TIMEOUT counts from here.
    verification_started_at = models.DateTimeField(null=True, blank=True)
    verification_checked_at = models.DateTimeField(null=True, blank=True)
    verification_error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        constraints = [
            # `www.x` and `x` are one name: they can never belong to two portals (API.md "Custom domains").
            models.UniqueConstraint(
                models.Func(models.F("domain"), models.Value(r"^www\."), models.Value(""), function="regexp_replace"),
                name="portals_domain_www_twin_unique",
                violation_error_message="This domain is already used by another portal.",
            ),
        ]
        indexes = [
            models.Index(
                fields=["verification_started_at"],
                condition=models.Q(verification_status="pending"),
                name="portals_domain_pending",
            ),
        ]

    def __str__(self) -> str:
        return self.domain

    # Whether requests for this host reach its portal (and links use it): default domains always, custom ones
    # once verified. The same rule twice, side by side: as a query filter and for a row in hand.
    ROUTES = models.Q(is_custom=False) | models.Q(verification_status="verified")

    @property
    def routes(self) -> bool:
        return not self.is_custom or self.verification_status == self.VerificationStatus.VERIFIED


class PortalMigration(models.Model):
    """What `migrate_portals` last found or did for one schema (a portal's, a spare's or the public one).

    Informational: which schemas are behind is always read from their own `django_migrations`
    tables, so a stale row (a run killed mid-way) never stops the next run from retrying.
    """

    class State(models.TextChoices):
        CURRENT = "current"  # every migration applied
        PENDING = "pending"  # behind, not tried (the run stopped first, or was interrupted)
        MIGRATING = "migrating"  # behind, in the run under way
        FAILED = "failed"  # its migration failed and was rolled back; `error` says why

    portal = models.OneToOneField(Portal, primary_key=True, on_delete=models.CASCADE, related_name="migration")
    state = models.CharField(max_length=10, choices=State.choices)
    last_applied = models.CharField(max_length=255, blank=True)  # "app.name" of the last one migrate_portals applied
    error = models.TextField(blank=True)
    duration_ms = models.FloatField(null=True, blank=True)  # the schema's own migration, in its worker
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.portal_id}: {self.state}"

    @property
    def summary(self) -> str:
        """One line for tables and the admin: state, last migration applied, duration, when; the error if any."""
        parts = [self.state, self.last_applied]
        if self.duration_ms is not None:
            parts.append(f"{self.duration_ms:.0f} ms")
        if self.finished_at is not None:
            parts.append(f"{self.finished_at:%Y-%m-%d %H:%M} UTC")
        summary = ", ".join(part for part in parts if part)
        return f"{summary}: {self.error}" if self.error else summary
