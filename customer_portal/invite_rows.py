"""Checking one invite row (e-mail, name, role) typed or uploaded by a person: the admin's
paste/CSV form and the `invite_portal_users` command report every bad row before inviting anyone."""

from collections.abc import Collection

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from customer_portal.models import PortalUser

# The PortalUser column sizes: a longer value would fail the insert half-way through a batch.
MAX_EMAIL_LENGTH = PortalUser._meta.get_field("email").max_length
MAX_NAME_LENGTH = PortalUser._meta.get_field("name").max_length


def invite_row_problems(*, email: str, name: str, role: str, allowed_domains: Collection[str] = ()) -> list[str]:
    """What is wrong with one row, in words for the person who wrote it (empty: nothing)."""
    problems = []
    try:
        validate_email(email)
    except ValidationError:
        problems.append(f"{email!r} is not a valid e-mail address")
    else:
        if len(email) > MAX_EMAIL_LENGTH:
            problems.append(f"the e-mail is longer than {MAX_EMAIL_LENGTH} characters")
        elif allowed_domains and email.rsplit("@", 1)[1].lower() not in allowed_domains:
            problems.append(f"only addresses at {', '.join(sorted(allowed_domains))} may be invited")
    if len(name) > MAX_NAME_LENGTH:
        problems.append(f"the name is longer than {MAX_NAME_LENGTH} characters")
    if role not in PortalUser.Role.values:
        problems.append(f"role {role!r} is not one of {', '.join(PortalUser.Role.values)}")
    return problems
