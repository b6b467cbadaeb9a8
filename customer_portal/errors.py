from portalsite.errors import ApplicationError


class CustomerPortalError(ApplicationError):
    """Refused operation inside a portal."""
