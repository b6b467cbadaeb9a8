"""What operator commands share about accounts: turning an argument into the object it names."""

from django.core.management.base import CommandError

from accounts.models import Organization
from accounts.selectors import organization_get_by_ref


def organization_argument(ref: str) -> Organization:
    """The organization an operator named by id or slug; a one-line CommandError when there is none."""
    organization = organization_get_by_ref(ref=ref)
    if organization is None:
        raise CommandError(f"No organization {ref!r}")
    return organization
