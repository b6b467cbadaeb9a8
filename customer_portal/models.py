"""Models that live in every portal's own schema.

Global accounts live in the public schema; a PortalUser points at one by id only
(`global_user_id`): a foreign key across schemas would break when accounts are deleted.
"""

import uuid
from datetime import datetime

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


class EmailDelivery(models.Model):
    """Where the last e-mail about a row stands: an invitation's e-mail, a linked member's "access granted".

    Each message is one job (customer_portal/tasks.py). `delivery_key` names the current message: a
    newer message (a resend) gets a new key, and a job for an older one finds it stale and sends
    nothing. No e-mail (an invite with `send_email=false`) leaves `delivery_status` empty (the API's null).
    """

    class DeliveryStatus(models.TextChoices):
        QUEUED = "queued", "Queued"  # waiting for a worker, or for its next try after a temporary failure
        SENT = "sent", "Sent"  # accepted by the mail server
        FAILED = "failed", "Failed"  # refused for good, or still failing at the end of EMAIL_RETRY_SCHEDULE

    delivery_status = models.CharField(max_length=16, choices=DeliveryStatus.choices, blank=True)  # "": no e-mail
    delivery_attempts = models.PositiveIntegerField(default=0)
    delivered_at = models.DateTimeField(null=True, blank=True)
    delivery_error = models.TextField(blank=True)  # the mail server's answer to the last try, "" for none
    delivery_key = models.CharField(max_length=32, blank=True, editable=False)

    class Meta:
        abstract = True


class PortalUser(EmailDelivery):
    """A member of the portal. Its delivery fields are about the "you now have access" e-mail a linked
    account holder gets (an invitee's e-mail is its Invitation's)."""

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


class Invitation(EmailDelivery):
    """A pending invitation; its secret token is only ever stored as a SHA-256 hash (the e-mail carries it)."""

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
        indexes = [
            models.Index(fields=["status", "expires_at"], name="cp_invitation_status_expiry"),
            models.Index(fields=["delivery_status"], name="cp_invitation_delivery"),
        ]

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


class SignInToken(EmailDelivery):
    """A one-time secret e-mailed to a member: a password-reset link, or a sign-in link with its 6-digit code.

    Like an invitation's, the link's token is never stored, only its SHA-256 hash: the e-mail job rebuilds
    it (and the code) from the row's id and delivery key under the SECRET_KEY (customer_portal.emails).
    `host` is the portal host it was asked on, which its e-mail links back to.
    """

    class Purpose(models.TextChoices):
        PASSWORD_RESET = "password_reset", "Password reset"
        EMAIL_SIGN_IN = "email_sign_in", "Sign-in by e-mail"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    portal_user = models.ForeignKey(PortalUser, on_delete=models.CASCADE, related_name="sign_in_tokens")
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    host = models.CharField(max_length=253, blank=True)  # "": the portal's link domain
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()  # the link's
    code_expires_at = models.DateTimeField(null=True, blank=True)  # the code's (sign-in by e-mail only)
    code_attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)  # used, voided by a newer one, or out of tries

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["portal_user", "purpose"], condition=models.Q(used_at__isnull=True), name="cp_signin_live"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} {self.id}"

    def link_live(self, now: datetime) -> bool:
        return self.used_at is None and self.expires_at > now
