from portalsite.errors import ApplicationError


class PortalsError(ApplicationError):
    """Refused portal operation."""
