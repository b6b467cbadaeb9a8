"""Signals of the account lifecycle, for the apps above `accounts` (which may not be imported here)."""

from django.dispatch import Signal

# Sent by `account_sign_out_everywhere` inside its transaction (kwargs: `user_id`), after the account's refresh
# tokens were revoked: receivers end whatever else the account is signed in with (its portal sessions).
account_signed_out_everywhere = Signal()
