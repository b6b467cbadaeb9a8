"""Signals of the portal lifecycle, for the apps above `portals` (which may not be imported here)."""

from django.dispatch import Signal

# Sent by `portal_create` inside its transaction, with the connection on the new portal's schema
# (kwargs: `portal`). Receivers fill the schema's own rows; an exception rolls the whole create back.
portal_schema_ready = Signal()
