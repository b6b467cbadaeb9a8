"""portalsite settings: one module, configured from the environment.

Every variable has a default that runs on a laptop; production differs only through
the environment (see the configuration table in README.md).
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import django_stubs_ext
import environ

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


SECRET_KEY = env.str("SECRET_KEY", default="") or _secret_key_from_data_dir()
DEBUG = env.bool("DEBUG", default=True)

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
    "accounts",
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
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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

DATABASE_URL = env.str("DATABASE_URL", default="")
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
        # Host -> portal lookups: shared by every worker on this machine and never a database query.
        "routing": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "routing-cache"),
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        },
    }

# Accounts and auth ---------------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

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
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}

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
        {"name": "operations", "description": "Health of the service."},
    ],
    "ENUM_NAME_OVERRIDES": {
        "PortalUserStatusEnum": "customer_portal.models.PortalUser.Status",
        "InvitationStatusEnum": "customer_portal.models.Invitation.Status",
        "DeliveryStatusEnum": "customer_portal.models.EmailDelivery.DeliveryStatus",
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

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
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
}
