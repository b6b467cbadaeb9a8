"""Models that live in every portal's own schema.

Global accounts live in the public schema; a PortalUser points at one by id only
(`global_user_id`): a foreign key across schemas would break when accounts are deleted.
"""

import uuid

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from customer_portal.features import FEATURE_CATALOG

# A colour as `#rrggbb`: the one check of a portal's primary colour (model, API, admin, pages, e-mails).
HEX_COLOR_VALIDATOR = RegexValidator(r"^#[0-9a-fA-F]{6}$", "Use a colour such as #1f6feb.")
DEFAULT_PRIMARY_COLOR = "#1f6feb"
SESSION_TIMEOUT_MIN_MINUTES = 5
SESSION_TIMEOUT_MAX_MINUTES = 43_200


class PortalUser(models.Model):
    class Role(models.TextChoices):
        MEMBER = "member", "Member"
        MANAGER = "manager", "Manager"

    class Status(models.TextChoices):
        INVITED = "invited", "Invited"
        ACTIVE = "active", "Active"
        REVOKED = "revoked", "Revoked"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(max_length=254)
    name = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.INVITED)
    global_user_id = models.UUIDField(null=True, blank=True)
    invited_at = models.DateTimeField(default=timezone.now)
    joined_at = models.DateTimeField(null=True, blank=True)
    last_login_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["invited_at", "email"]  # one batch shares invited_at: e-mail keeps pages stable
        constraints = [
            models.UniqueConstraint(Lower("email"), name="customer_portal_portaluser_email_ci_unique"),
            models.UniqueConstraint(
                fields=["global_user_id"],
                condition=models.Q(global_user_id__isnull=False),
                name="customer_portal_portaluser_global_user_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["invited_at", "email"], name="cp_portaluser_order"),
            models.Index(fields=["status", "role"], name="cp_portaluser_status_role"),
        ]

    def __str__(self) -> str:
        return self.email


class Invitation(models.Model):
    """A pending invitation; its secret token is only ever stored as a SHA-256 hash."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        REVOKED = "revoked", "Revoked"
        # A pending invitation past expires_at reads as expired at once; cleanup_portals also stores it.
        EXPIRED = "expired", "Expired"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    portal_user = models.ForeignKey(PortalUser, on_delete=models.CASCADE, related_name="invitations")
    token_hash = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    message = models.TextField(blank=True)
    invited_by = models.EmailField(max_length=254, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["status", "expires_at"], name="cp_invitation_status_expiry")]

    def __str__(self) -> str:
        return f"Invitation {self.id} ({self.status})"

    @property
    def effective_status(self) -> str:
        """The status as of now: a pending invitation past its expiry is expired, whether or not it is stored."""
        if self.status == Invitation.Status.PENDING and self.expires_at <= timezone.now():
            return Invitation.Status.EXPIRED
        return self.status


class PortalSession(models.Model):
    """A login on the portal's host; its id travels in the portal-scoped tokens."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    portal_user = models.ForeignKey(PortalUser, on_delete=models.CASCADE, related_name="sessions")
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["created_at"], name="cp_session_created"),
            models.Index(
                fields=["expires_at"], condition=models.Q(ended_at__isnull=True), name="cp_session_live_expiry"
            ),
        ]

    def __str__(self) -> str:
        return f"Session {self.id}"


class PortalSettings(models.Model):
    """The portal's configuration: exactly one row per schema (id 1)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    display_name = models.CharField(max_length=100, blank=True)
    logo_url = models.URLField(max_length=500, blank=True)
    # Validated here too: e-mails and pages put it in a style attribute, whoever wrote it.
    primary_color = models.CharField(
        max_length=7,
        default=DEFAULT_PRIMARY_COLOR,
        validators=[HEX_COLOR_VALIDATOR],
    )
    welcome_message = models.TextField(max_length=2000, blank=True)
    support_email = models.EmailField(max_length=254, blank=True)
    allowed_email_domains = ArrayField(models.CharField(max_length=253), default=list, blank=True)
    session_timeout_minutes = models.PositiveIntegerField(
        default=60 * 24,
        validators=[
            MinValueValidator(SESSION_TIMEOUT_MIN_MINUTES),
            MaxValueValidator(SESSION_TIMEOUT_MAX_MINUTES),
        ],
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "portal settings"
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="customer_portal_settings_singleton")]

    def __str__(self) -> str:
        return self.display_name or "Portal settings"

    @property
    def safe_primary_color(self) -> str:
        """The colour for a style attribute: a row written behind the services' back never gets there as is."""
        try:
            HEX_COLOR_VALIDATOR(self.primary_color)
        except ValidationError:
            return DEFAULT_PRIMARY_COLOR
        return self.primary_color.lower()


class Feature(models.Model):
    """A catalog feature's switch in this portal; name and description come from the catalog."""

    key = models.CharField(max_length=50, primary_key=True)
    enabled = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key

    @property
    def name(self) -> str:
        return FEATURE_CATALOG[self.key].name if self.key in FEATURE_CATALOG else self.key

    @property
    def description(self) -> str:
        return FEATURE_CATALOG[self.key].description if self.key in FEATURE_CATALOG else ""
