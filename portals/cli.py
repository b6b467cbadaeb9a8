"""What operator commands share about portals: turning an argument into the portal it names."""

from django.core.management.base import CommandError

from portals.models import Portal
from portals.selectors import portal_get_by_ref


def portal_argument(ref: str) -> Portal:
    """The portal an operator named by id or slug; a one-line CommandError when there is none."""
    portal = portal_get_by_ref(ref=ref)
    if portal is None:
        raise CommandError(f"No portal {ref!r}")
    return portal
