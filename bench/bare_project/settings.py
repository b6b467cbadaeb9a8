"""The throughput figures' baseline: a bare Django project, as `django-admin startproject` minus every app.

No apps, no database, `CommonMiddleware` only, one view returning a `JsonResponse`: what a user compares
any Django service with. Served by gunicorn exactly as the project is (bench.server.BenchServer).
"""

DEBUG = False
SECRET_KEY = "bench-bare-project-signs-nothing"  # noqa: S105  # no sessions, no signing: only Django's start-up check
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS: list[str] = []
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "bench.bare_project.urls"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
