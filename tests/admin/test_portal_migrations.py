"""The admin shows each portal's last migrate_portals outcome: a column in the list, a line on its page."""

from datetime import UTC, datetime

from django.test import Client

from portals.models import Portal, PortalMigration


def test_the_list_shows_each_portals_migration_state(owner_web: Client, portal: Portal) -> None:
    page = owner_web.get("/admin/portals/portal/").content.decode()
    assert '<th scope="col" class="column-migrations">' in page
    assert '<td class="field-migrations">-</td>' in page  # not seen by migrate_portals yet

    PortalMigration.objects.create(portal=portal, state=PortalMigration.State.FAILED, error="boom")
    page = owner_web.get("/admin/portals/portal/").content.decode()

    assert '<td class="field-migrations">failed</td>' in page


def test_the_change_page_shows_the_last_outcome_with_its_error(owner_web: Client, portal: Portal) -> None:
    PortalMigration.objects.create(
        portal=portal,
        state=PortalMigration.State.FAILED,
        last_applied="customer_portal.0003_primary_color_format",
        error="customer_portal.0004_x: IntegrityError: check constraint violated",
        duration_ms=12.4,
        finished_at=datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
    )

    page = owner_web.get(f"/admin/portals/portal/{portal.pk}/change/").content.decode()

    assert (
        '<th scope="row">Migrations</th><td>failed, customer_portal.0003_primary_color_format, 12 ms, '
        "2026-01-02 03:04 UTC: customer_portal.0004_x: IntegrityError: check constraint violated</td>"
    ) in page
