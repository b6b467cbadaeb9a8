from django.conf import settings
from django.db import transaction
from django_tenants.utils import get_public_schema_name

from portals.models import Domain, Portal


@transaction.atomic
def public_tenant_ensure() -> Portal:
    """Create the public tenant and a domain for each of MAIN_HOSTS; a no-op when they exist."""
    public, _ = Portal.objects.get_or_create(
        schema_name=get_public_schema_name(),
        defaults={"name": "Public", "slug": get_public_schema_name()},
    )
    existing = set(Domain.objects.filter(domain__in=settings.MAIN_HOSTS).values_list("domain", flat=True))
    Domain.objects.bulk_create(
        Domain(domain=host, tenant=public, is_primary=index == 0)
        for index, host in enumerate(settings.MAIN_HOSTS)
        if host not in existing
    )
    return public
