import functools
import uuid

from django.db import connection
from django.db.models import QuerySet

from accounts.errors import AccountsError
from accounts.models import Organization, OrgMembership, User
from portalsite.db import model_attnames, tenant_connection


def organization_get_by_ref(*, ref: str) -> Organization | None:
    """An organization by id or slug (operators type either)."""
    try:
        return Organization.objects.filter(id=uuid.UUID(ref)).first()
    except ValueError:
        return Organization.objects.filter(slug=ref).first()


def admin_organizations(*, user: User) -> QuerySet[Organization]:
    """The production organizations `user` administers: the only ones whose portals it may manage."""
    return Organization.objects.filter(
        environment=Organization.Environment.PRODUCTION,
        memberships__user=user,
        memberships__role=OrgMembership.Role.ADMIN,
    )


@functools.cache
def _account_sql() -> str:
    """The account behind an account token and the production organizations it administers, in one statement
    (it runs on every request of an org admin; the ORM would build and compile it each time). The subquery is
    `admin_organizations` written out: tests/accounts/test_auth.py compares the two."""
    user, membership, organization = User._meta, OrgMembership._meta, Organization._meta
    columns = ", ".join(f'u."{field.column}"' for field in user.concrete_fields)
    # Identifiers from the models' metadata; every value is a parameter.
    return (
        f'SELECT {columns}, ARRAY(SELECT m."organization_id" FROM "{membership.db_table}" m'  # noqa: S608
        f' JOIN "{organization.db_table}" o ON o."id" = m."organization_id"'
        ' WHERE m."user_id" = u."id" AND m."role" = %s AND o."environment" = %s)'
        f' FROM "{user.db_table}" u WHERE u."id" = %s'
    )


def account_get_with_admin_organizations(*, user_id: uuid.UUID) -> tuple[User, frozenset[uuid.UUID]] | None:
    """The account with this id and the ids of the production organizations it administers, or None."""
    with tenant_connection.prepared_cursor() as cursor:
        cursor.execute(_account_sql(), [OrgMembership.Role.ADMIN, Organization.Environment.PRODUCTION, user_id])
        row = cursor.fetchone()
    if row is None:
        return None
    fields = model_attnames(User)
    return User.from_db(connection.alias, fields, row[: len(fields)]), frozenset(row[len(fields)])


def organization_get_for_admin(*, user: User, organization_id: uuid.UUID | None) -> Organization:
    """The production organization `user` administers and means: `organization_id`, or its only one.

    Raises AccountsError (422 on `organization_id`) for an organization outside its reach, or when it
    administers several and did not say which.
    """
    organizations = admin_organizations(user=user)
    if organization_id is not None:
        organization = organizations.filter(id=organization_id).first()
        if organization is None:
            raise AccountsError("Unknown organization.", loc=("organization_id",))
        return organization
    only = list(organizations[:2])
    if len(only) != 1:
        raise AccountsError(
            "You administer several organizations: say which one.", loc=("organization_id",), code="missing"
        )
    return only[0]
