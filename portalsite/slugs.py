from collections.abc import Collection

from django.db.models import Model, QuerySet

SLUG_MAX_LENGTH = 63  # one DNS label


def unique_slug(*, base: str, queryset: QuerySet[Model], reserved: Collection[str] = ()) -> str:
    """`base`, suffixed -2, -3, ... until it is free in `queryset` and not reserved.

    Reads the taken slugs in one query; the caller's unique constraint still decides races.
    """
    base = base[:SLUG_MAX_LENGTH].strip("-")
    taken = set(queryset.filter(slug__startswith=base).values_list("slug", flat=True)) | set(reserved)
    if base not in taken:
        return base
    n = 2
    while True:
        suffix = f"-{n}"
        candidate = f"{base[: SLUG_MAX_LENGTH - len(suffix)].rstrip('-')}{suffix}"
        if candidate not in taken:
            return candidate
        n += 1
