from portalsite.errors import ApplicationError


class AccountsError(ApplicationError):
    """Refused account or organization operation."""
