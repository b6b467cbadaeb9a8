import re

# One DNS name, lower-case: labels of letters, digits and inner hyphens, at least two labels, no port.
_HOSTNAME = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$")


def is_hostname(value: str) -> bool:
    return bool(_HOSTNAME.match(value))
