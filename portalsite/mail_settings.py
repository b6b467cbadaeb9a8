"""Django's EMAIL_* settings from one EMAIL_URL (django-environ's schemes: smtp://, consolemail://, ...)."""

from typing import Any
from urllib.parse import unquote, urlsplit

import environ


def email_settings(url: str) -> dict[str, Any]:
    """django-environ's reading of `url`, with the file backend's path as written.

    django-environ takes the path of `filemail:///var/mail/portalsite` without its leading slash, so the
    documented absolute form wrote into `var/mail/portalsite` under the current folder. Here
    `filemail:///abs/path` is that absolute folder and `filemail://rel/path` a folder relative to the
    current one.
    """
    config: dict[str, Any] = environ.Env.email_url_config(url)
    parts = urlsplit(url)
    if parts.scheme == "filemail":
        path = unquote(parts.netloc + parts.path)
        if path.startswith("//"):
            path = "/" + path.lstrip("/")  # POSIX keeps a leading "//" as it is: one slash is meant
        config.update(EMAIL_FILE_PATH=path, EMAIL_HOST=None)
    return config
