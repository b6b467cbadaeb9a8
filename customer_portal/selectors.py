from customer_portal.models import PortalSettings, PortalUser


def portal_settings_get() -> PortalSettings:
    """The current schema's settings row (created by migration 0002 in every portal schema)."""
    return PortalSettings.objects.get(id=1)


def portal_user_list(*, limit: int | None = None, offset: int = 0) -> tuple[list[PortalUser], int]:
    """The current portal's users in invitation order, one page of them when `limit` is given, and the total."""
    users = PortalUser.objects.all()
    if limit is None and offset == 0:
        everyone = list(users)
        return everyone, len(everyone)
    page = users[offset : offset + limit] if limit is not None else users[offset:]
    return list(page), users.count()
