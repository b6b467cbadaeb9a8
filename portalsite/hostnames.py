import re

from django.conf import settings
from django.http import HttpRequest

# One DNS name, lower-case: labels of letters, digits and inner hyphens, at least two labels, no port.
_HOSTNAME = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$")


def is_hostname(value: str) -> bool:
    return bool(_HOSTNAME.match(value))


def request_hostname(request: HttpRequest) -> str:
    """The request's host, lower-case, without its port: what routing goes by."""
    return request.get_host().split(":")[0].lower()


def absolute_url(host: str, path: str) -> str:
    """A link for e-mails: `host` (a routed one: never a client's free choice) with PORTAL_URL_SCHEME and
    PORTAL_URL_PORT, which say how this service is reached from outside."""
    port = f":{settings.PORTAL_URL_PORT}" if settings.PORTAL_URL_PORT else ""
    return f"{settings.PORTAL_URL_SCHEME}://{host}{port}{path}"
