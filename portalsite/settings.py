"""portalsite settings: one module, configured from the environment.

Every variable has a default that runs on a laptop; production differs only through
the environment (see the configuration table in README.md).
"""

import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import django_stubs_ext
import environ
from django.core.exceptions import ImproperlyConfigured

from portalsite.embedded_db import embedded_database_settings
from portalsite.mail_settings import email_settings

# Lets generic Django classes be subscripted at run time (`ModelAdmin[Portal]`), as the type checker reads them.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.FileAwareEnv()  # also reads SECRET_KEY_FILE, DATABASE_URL_FILE, ...

DATA_DIR = Path(env.str("DATA_DIR", default=str(BASE_DIR / ".data")))


def _secret_key_from_data_dir() -> str:
    """Generate a key on first use and keep it under DATA_DIR, so sessions and tokens survive restarts."""
    path = DATA_DIR / "secret_key"
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: when several processes start at once, exactly one writes the key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


DEBUG = env.bool("DEBUG", default=True)
DATABASE_URL = env.str("DATABASE_URL", default="")


def _production_requires(name: str, value: str) -> str:
    """Production (DEBUG=false) never starts on a laptop default: no generated key, no embedded database."""
    if not value and not DEBUG:
        sys.exit(f"error: {name} is not set; DEBUG=false (production) needs it in the environment")
    return value


_production_requires("DATABASE_URL", DATABASE_URL)
SECRET_KEY = _production_requires("SECRET_KEY", env.str("SECRET_KEY", default="")) or _secret_key_from_data_dir()

PORTAL_BASE_DOMAIN = env.str("PORTAL_BASE_DOMAIN", default="localhost").lower()
MAIN_HOSTS = [host.lower() for host in env.list("MAIN_HOSTS", default=["localhost", "127.0.0.1"])]
# "*" by default: portals.middleware serves only MAIN_HOSTS and registered portal domains (404 for
# any other host), and custom domains must work the moment they are added, without a restart.
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["*"])
PORTAL_INVITATION_TTL = timedelta(seconds=env.int("PORTAL_INVITATION_TTL", default=7 * 24 * 3600))

# Applications --------------------------------------------------------------

SHARED_APPS = [
    "django_tenants",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.admin",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "procrastinate.contrib.django",  # the job queue's tables, in public; before our apps, whose tasks.py it imports
    "axes",
    "accounts",
    "events",
    "portals",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "customer_portal",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "portals.Portal"
TENANT_DOMAIN_MODEL = "portals.Domain"
# One `SET search_path` per tenant switch instead of one per statement.
TENANT_LIMIT_SET_CALLS = env.bool("TENANT_LIMIT_SET_CALLS", default=True)
PUBLIC_SCHEMA_URLCONF = "portalsite.urls"
ROOT_URLCONF = "portalsite.urls_portal"

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "portals.middleware.PortalRoutingMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Who acts, through what, from where: the context every audit event is recorded with (events.context).
    "events.context.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a locked-out admin login into the lockout page (accounts.lockout).
    "axes.middleware.AxesMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "portalsite.wsgi.application"

# Database ------------------------------------------------------------------

if DATABASE_URL:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
else:
    DATABASES = {"default": embedded_database_settings(DATA_DIR)}
DATABASES["default"].update(
    # django-tenants' backend, minus its per-request redundant SET and health-check round trip (see the module).
    ENGINE="portalsite.db_backend",
    # Finite: every backend caches catalog entries of each schema it touches.
    CONN_MAX_AGE=env.int("CONN_MAX_AGE", default=60),
    CONN_HEALTH_CHECKS=True,
)
# A database host that drops packets must fail a request fast (503), not hold a worker past its timeout.
DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
    "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
)
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    _redis = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    CACHES = {"default": _redis, "routing": {**_redis, "KEY_PREFIX": "routing"}}
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "portalsite_cache"},
        # Routes and rendered portal configs: in this process only. Nothing tells another instance (or another
        # worker) that a domain changed, so entries live ROUTING_CACHE_TTL seconds (5 by default): a change
        # reaches every instance within that, at one indexed query per host per worker every 5 s.
        "routing": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "routing",
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        },
    }
# How long a cached route or portal config is used. With Redis every change forgets its keys everywhere at
# once, so an hour only bounds edits made outside the services; without it this is the staleness bound.
ROUTING_CACHE_TTL = env.int("ROUTING_CACHE_TTL", default=3600 if REDIS_URL else 5)
# "No portal at this host" answers: kept in this process only (never in the shared cache, which unknown
# hosts would otherwise fill), and briefly.
ROUTING_NEGATIVE_TTL = env.int("ROUTING_NEGATIVE_TTL", default=5)

# Accounts and auth ---------------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
# django-axes first: it refuses a locked-out account or IP before any password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)  # failed logins per account, and per IP
AXES_COOLOFF_TIME = timedelta(seconds=env.int("LOGIN_LOCKOUT_SECONDS", default=15 * 60))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # by account or by IP, each on its own
AXES_USERNAME_CALLABLE = "accounts.lockout.login_username"
AXES_CLIENT_IP_CALLABLE = "accounts.lockout.client_ip"
AXES_RESET_ON_SUCCESS = True
# Attempts during a lockout do not extend it: otherwise anyone could keep an account locked for good.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_TEMPLATE = "admin/locked_out.html"
AXES_VERBOSE = False  # attempts are rows in the database (axes' admin), not log lines naming accounts
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    # Changing a password ends every refresh token and portal session of the account (admin, changepassword).
    {"NAME": "accounts.passwords.SignOutEverywhereOnPasswordChange"},
]

# Proxies in front that append to X-Forwarded-For (the client IP for throttling) and set X-Forwarded-Proto.
NUM_PROXIES = env.int("NUM_PROXIES", default=0)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["customer_portal.api.authentication.PortalAwareJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["portalsite.api.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "portalsite.api.negotiation.JSONContentNegotiation",
    "DEFAULT_SCHEMA_CLASS": "portalsite.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "portalsite.api.exception_handler.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "auth": env.str("AUTH_THROTTLE_RATE", default="20/min"),
        "invite": env.str("INVITE_THROTTLE_RATE", default="300/min"),
    },
    "NUM_PROXIES": NUM_PROXIES,
}

# A refresh chain ends this long after the login that started it, however often it was rotated.
JWT_SESSION_MAX_AGE = timedelta(seconds=env.int("JWT_SESSION_MAX_AGE", default=30 * 24 * 3600))
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_ACCESS_LIFETIME", default=5 * 60)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_REFRESH_LIFETIME", default=24 * 3600)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "SIGNING_KEY": env.str("JWT_SIGNING_KEY", default="") or SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "portalsite API",
    "DESCRIPTION": "Customer portals: `/v1/portal` for org admins, `/v1/customer-portal` inside one portal.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_URLCONF": PUBLIC_SCHEMA_URLCONF,
    "COMPONENT_SPLIT_PATCH": False,
    "TAGS": [
        {"name": "portal", "description": "`/v1/portal`: an organization's portals and their people (org admins)."},
        {"name": "customer-portal", "description": "`/v1/customer-portal`: one portal, by its host or `X-Portal-ID`."},
        {"name": "auth", "description": "`/v1/auth`: token pairs for accounts and portal logins."},
        {"name": "audit", "description": "`/v1/audit-events`: the audit trail of the caller's organizations."},
        {
            "name": "webhooks",
            "description": "`/v1/webhooks`: signed deliveries of an organization's events (org admins).",
        },
        {"name": "operations", "description": "Health of the service."},
    ],
    "ENUM_NAME_OVERRIDES": {
        "PortalUserStatusEnum": "customer_portal.models.PortalUser.Status",
        "InvitationStatusEnum": "customer_portal.models.Invitation.Status",
        "DeliveryStatusEnum": "customer_portal.models.EmailDelivery.DeliveryStatus",
        "WebhookDeliveryStatusEnum": "events.webhook_models.WebhookDelivery.Status",
    },  # PATCH and PUT share PortalUpdateRequest (every field is optional)
}

# Mail ----------------------------------------------------------------------

vars().update(email_settings(env.str("EMAIL_URL", default="consolemail://")))
# Seconds a mail server may take to answer (Django's default is to wait for ever, holding a worker).
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
# Each e-mail is a job; after a temporary failure it is tried again after these many seconds, one
# step per failed try; still failing at the end (or refused for good, a 5xx), it is `failed`.
EMAIL_RETRY_SCHEDULE = [
    int(seconds) for seconds in env.list("EMAIL_RETRY_SCHEDULE", default=["10", "60", "300", "1800", "7200"])
]
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="portalsite <noreply@localhost>")

# Webhooks ------------------------------------------------------------------

# Seconds an endpoint has, from connecting to the end of its answer; any 2xx within it is a success.
WEBHOOK_TIMEOUT = env.float("WEBHOOK_TIMEOUT", default=15.0)
# A failed delivery is tried again after these many seconds, one step per failed try, then `failed`
# (Svix's schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h).
WEBHOOK_RETRY_SCHEDULE = [
    int(seconds)
    for seconds in env.list("WEBHOOK_RETRY_SCHEDULE", default=["5", "300", "1800", "7200", "18000", "36000", "36000"])
]
# An endpoint whose every delivery has failed for this long is disabled (a `webhook_endpoint.disabled` event).
WEBHOOK_DISABLE_AFTER = timedelta(seconds=env.int("WEBHOOK_DISABLE_AFTER", default=5 * 24 * 3600))
# Development and tests only: accept plain-http URLs, and hosts on loopback, private or link-local networks.
WEBHOOK_ALLOW_HTTP = env.bool("WEBHOOK_ALLOW_HTTP", default=False)
WEBHOOK_ALLOW_PRIVATE_NETWORKS = env.bool("WEBHOOK_ALLOW_PRIVATE_NETWORKS", default=False)
# Deliveries (and their tries) that ended are deleted this long after they were made (the periodic job below).
WEBHOOK_DELIVERY_RETENTION_DAYS = env.int("WEBHOOK_DELIVERY_RETENTION_DAYS", default=30)

# Static files and i18n -----------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(DATA_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from the apps until `collectstatic` has been run (laptops, tests).
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=DEBUG)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# Request limits: bodies past this are refused (413) before they are parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2 * 1024 * 1024)

# Security (production is DEBUG=false; each can still be tuned from the environment) ---

# X-Forwarded-Proto is believed only when the operator says a proxy in front sets it: a client can send the
# header itself, and with it any plain-HTTP request would pass for HTTPS.
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("TRUST_X_FORWARDED_PROTO", default=NUM_PROXIES >= 1) else None
)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# The TLS terminator asks over plain HTTP on loopback before any certificate exists (deploy/Caddyfile).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^internal/tls-ask$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
X_FRAME_OPTIONS = "DENY"

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "pgserver": {"level": "WARNING"},
        # These announce, at INFO, every task and schedule each time any process starts Django, and
        # every job a request queues; the worker's own lines (each job's start and end) stay.
        "procrastinate.blueprints": {"level": "WARNING"},
        "procrastinate.periodic": {"level": "WARNING"},
        "procrastinate.jobs": {"level": "WARNING"},
    },
}

# Portals ---------------------------------------------------------------------

# Pre-migrated spare schemas kept ready so that creating a portal is a rename, not a migrate.
# A create queues a refill job (run by `manage.py worker`); so does the periodic job below.
PORTAL_SPARE_POOL_SIZE = env.int("PORTAL_SPARE_POOL_SIZE", default=3)
# Links in e-mails point at the portal's own host: <scheme>://<domain>[:port]/...
PORTAL_URL_SCHEME = env.str("PORTAL_URL_SCHEME", default="http" if DEBUG else "https")
PORTAL_URL_PORT = env.str("PORTAL_URL_PORT", default="8000" if DEBUG else "")

# Custom domains ----------------------------------------------------------------

# DNS servers for the TXT checks (`host[:port],...`); empty: the system resolver (/etc/resolv.conf).
DNS_RESOLVERS = env.list("DNS_RESOLVERS", default=[])
DNS_TIMEOUT = env.float("DNS_TIMEOUT", default=5.0)  # seconds for one lookup, every server tried included
DOMAIN_CHECK_INTERVAL = env.int("DOMAIN_CHECK_INTERVAL", default=300)  # seconds between background checks


def _cron_every(seconds: int, name: str) -> str:
    """A cron line that fires every `seconds` (procrastinate's cron takes a sixth field for seconds)."""
    for unit, per, field in ((1, 60, "* * * * * */{}"), (60, 60, "*/{} * * * *"), (3600, 24, "0 */{} * * *")):
        count, rest = divmod(seconds, unit)
        if rest == 0 and 1 <= count < per and per % count == 0:
            return field.format(count)
    raise ImproperlyConfigured(
        f"{name}={seconds}: use a number of seconds, minutes or hours that divides a minute, hour or day"
    )


DOMAIN_VERIFY_TIMEOUT = timedelta(seconds=env.int("DOMAIN_VERIFY_TIMEOUT", default=7 * 24 * 3600))

# Audit log ------------------------------------------------------------------------

# Events older than this are deleted by the daily `audit_prune` job (each chain keeps an anchor to verify from).
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=365)

# Background jobs (procrastinate: jobs in PostgreSQL, run by `manage.py worker`) ----------

# Tasks live in each app's tasks.py (found by procrastinate's autodiscovery); the job queue's own
# upkeep (pruning, stalled jobs) in portalsite/jobs.py.
PROCRASTINATE_IMPORT_PATHS = ["portalsite.jobs"]
# A worker writes a heartbeat every JOBS_HEARTBEAT_INTERVAL seconds; a worker silent for
# JOBS_STALLED_AFTER seconds is dead (killed, or its machine gone), and its running jobs are put back
# in the queue by the next worker that starts and by the periodic `retry_stalled_jobs`.
JOBS_HEARTBEAT_INTERVAL = env.float("JOBS_HEARTBEAT_INTERVAL", default=10.0)
JOBS_STALLED_AFTER = env.float("JOBS_STALLED_AFTER", default=60.0)
# Jobs that ended (succeeded, failed, cancelled, aborted) are deleted this long after they ended.
JOBS_RETENTION_HOURS = env.int("JOBS_RETENTION_HOURS", default=7 * 24)
# Jobs one worker runs at once, unless `manage.py worker --concurrency N` says otherwise.
JOBS_WORKER_CONCURRENCY = env.int("JOBS_WORKER_CONCURRENCY", default=4)
PROCRASTINATE_WORKER_DEFAULTS = {
    "update_heartbeat_interval": JOBS_HEARTBEAT_INTERVAL,
    "stalled_worker_timeout": JOBS_STALLED_AFTER,
}

# Periodic jobs: every schedule in one place. Each name is a task declared with
# `@periodic_job("<name>")` (portalsite/jobs.py) in its app's tasks.py; the value is its cron line
# ("minute hour day month weekday", or a sixth field for seconds). Any worker defers it; the
# database makes each tick one job across all workers. Add new ones here.
PERIODIC_JOBS = {
    # customer_portal: store `expired` on invitations past their expiry, end timed-out sessions.
    "portal_housekeeping": env.str("PORTAL_HOUSEKEEPING_SCHEDULE", default="*/5 * * * *"),
    # portals: top the spare-schema pool up (a create also queues a refill).
    "spare_pool_refill": env.str("SPARE_POOL_REFILL_SCHEDULE", default="*/10 * * * *"),
    # accounts: delete refresh-token records past their expiry (simplejwt's flushexpiredtokens).
    "flush_expired_tokens": env.str("FLUSH_EXPIRED_TOKENS_SCHEDULE", default="17 3 * * *"),
    # the job queue: put back the jobs of dead workers; delete ended jobs past JOBS_RETENTION_HOURS.
    "retry_stalled_jobs": env.str("RETRY_STALLED_JOBS_SCHEDULE", default="* * * * *"),
    "prune_jobs": env.str("PRUNE_JOBS_SCHEDULE", default="43 * * * *"),
    # portals: look the TXT records of pending custom domains up; fail those pending past DOMAIN_VERIFY_TIMEOUT.
    "custom_domains_check": _cron_every(DOMAIN_CHECK_INTERVAL, "DOMAIN_CHECK_INTERVAL"),
    # events: delete audit events older than AUDIT_RETENTION_DAYS.
    "audit_prune": env.str("AUDIT_PRUNE_SCHEDULE", default="29 4 * * *"),
    # events: delete ended webhook deliveries past WEBHOOK_DELIVERY_RETENTION_DAYS.
    "prune_webhook_deliveries": env.str("PRUNE_WEBHOOK_DELIVERIES_SCHEDULE", default="41 4 * * *"),
}
