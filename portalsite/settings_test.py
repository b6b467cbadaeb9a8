"""Test settings: the production module with fast hashing, in-memory cache and mail."""

from portalsite.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "routing": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "routing"},
}
PORTAL_SPARE_POOL_SIZE = 3  # as many as the session fixture makes: the session portal's create refills it
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
WHITENOISE_USE_FINDERS = True
SECURE_SSL_REDIRECT = False
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
LOGGING["loggers"]["django.request"] = {"level": "ERROR"}  # noqa: F405  # every refused request logs a warning
