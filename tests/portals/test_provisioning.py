"""Provisioning: spare schemas are real, current and indistinguishable; creation is atomic under races."""

import threading
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django_tenants.utils import schema_context

from customer_portal.features import FEATURE_CATALOG
from customer_portal.models import Feature
from portals.errors import PortalsError
from portals.models import Portal
from portals.provisioning import spare_pool_refill
from portals.services import portal_delete
from tests.conftest import make_portal
from tests.jobs import run_jobs

pytestmark = pytest.mark.django_db

_CATALOG_QUERIES = {
    "relations": "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = %s ORDER BY 1",
    "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default, character_maximum_length, "
    "is_identity FROM information_schema.columns WHERE table_schema = %s ORDER BY 1, 2",
    "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s ORDER BY 1",
    "constraints": "SELECT c.conname, c.contype, pg_get_constraintdef(c.oid) FROM pg_constraint c "
    "JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = %s ORDER BY 1",
    "sequences": "SELECT sequence_name, data_type, start_value, increment FROM information_schema.sequences "
    "WHERE sequence_schema = %s ORDER BY 1",
}


def _catalog(schema: str) -> dict[str, Any]:
    """Everything that defines a schema's shape, with the schema's own name blanked out."""
    snapshot: dict[str, Any] = {}
    with connection.cursor() as cursor:
        for name, query in _CATALOG_QUERIES.items():
            cursor.execute(query, [schema])
            snapshot[name] = [tuple(str(v).replace(schema, "<schema>") for v in row) for row in cursor.fetchall()]
        quoted = connection.ops.quote_name(schema)
        cursor.execute(f"SELECT app, name FROM {quoted}.django_migrations ORDER BY 1, 2")  # noqa: S608
        snapshot["migrations"] = cursor.fetchall()
        cursor.execute(f"SELECT app_label, model FROM {quoted}.django_content_type ORDER BY 1, 2")  # noqa: S608
        snapshot["content_types"] = cursor.fetchall()
        cursor.execute(f"SELECT key, enabled FROM {quoted}.customer_portal_feature ORDER BY 1")  # noqa: S608
        snapshot["features"] = cursor.fetchall()
    return snapshot


def _schemas(prefix: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", [prefix + "%"])
        return {row[0] for row in cursor.fetchall()}


def _portal_schemas_without_a_row() -> set[str]:
    return _schemas("portal_") - set(Portal.objects.values_list("schema_name", flat=True))


def test_a_portal_from_a_spare_matches_a_freshly_migrated_schema(session_admin, spare_pool):
    portal = make_portal(session_admin, name="Compared", slug="compared")
    Portal(schema_name="fresh_reference").create_schema(verbosity=0)  # the default django-tenants path

    from_spare, fresh = _catalog(portal.schema_name), _catalog("fresh_reference")

    assert from_spare["relations"], "the catalog query found nothing"
    assert from_spare == fresh
    assert [key for key, _ in from_spare["features"]] == sorted(FEATURE_CATALOG)


def test_a_migration_added_later_reaches_every_spare(spare_pool):
    spare = Portal.objects.filter(is_spare=True).order_by("created_at").first()
    call_command("migrate_schemas", "customer_portal", "0001", schema_name=spare.schema_name, verbosity=0)
    with schema_context(spare.schema_name):
        Feature.objects.filter(key="chat").delete()
    behind = _catalog(spare.schema_name)["migrations"]
    assert ("customer_portal", "0002_feature_catalog_and_settings") not in behind

    call_command("migrate_schemas", verbosity=0)  # what an operator runs after a deploy

    caught_up = _catalog(spare.schema_name)
    assert ("customer_portal", "0002_feature_catalog_and_settings") in caught_up["migrations"]
    assert "chat" in [key for key, _ in caught_up["features"]]


def test_a_failure_mid_create_leaves_nothing_behind(session_admin, spare_pool, monkeypatch):
    spares_before = set(Portal.objects.filter(is_spare=True).values_list("schema_name", flat=True))

    def fail(**kwargs: Any) -> None:
        raise RuntimeError("injected failure after the schema rename")

    monkeypatch.setattr("customer_portal.services.portal_settings_initialize", fail)
    with pytest.raises(RuntimeError):
        make_portal(session_admin, name="Boom", slug="boom")

    assert not Portal.objects.filter(slug="boom").exists()
    assert not _portal_schemas_without_a_row()
    assert set(Portal.objects.filter(is_spare=True).values_list("schema_name", flat=True)) == spares_before
    assert spares_before <= _schemas("spare_")


def test_an_empty_pool_falls_back_to_migrating_and_says_so(session_admin, caplog):
    Portal.objects.filter(is_spare=True).update(is_spare=False)  # hide the pool (rolled back with the test)

    portal = make_portal(session_admin, name="Slow", slug="slow")

    assert portal.schema_name == f"portal_{portal.id.hex}"
    assert _catalog(portal.schema_name)["features"]
    assert "spare schema pool is empty" in caplog.text


def test_refill_tops_the_pool_up_and_no_further(spare_pool):
    before = Portal.objects.filter(is_spare=True).count()

    created = spare_pool_refill(size=before + 1)
    again = spare_pool_refill(size=before + 1)

    assert (created, again) == (1, 0)
    assert Portal.objects.filter(is_spare=True).count() == before + 1


def test_a_slug_used_again_never_gets_the_old_schema_name(session_admin):
    first = make_portal(session_admin, name="Shared", slug="shared-name")
    first_schema = first.schema_name
    portal_delete(portal=first)

    second = make_portal(session_admin, name="Shared again", slug="shared-name")

    assert second.id != first.id
    assert second.schema_name == f"portal_{second.id.hex}" != first_schema
    assert first_schema == f"portal_{first.id.hex}"


def test_spares_are_named_from_their_id_and_keep_it_as_portals(session_admin):
    spare = Portal.objects.filter(is_spare=True).order_by("created_at").first()
    assert spare.schema_name == f"spare_{spare.id.hex}"

    portal = make_portal(session_admin, name="From a spare", slug="from-a-spare")

    assert portal.id == spare.id
    assert portal.schema_name == f"portal_{spare.id.hex}"


def _race(session_admin_id: Any, bodies: list[dict[str, str]]) -> list[Any]:
    """Run portal_create for each body at the same moment, each on its own connection."""
    from accounts.models import User

    barrier = threading.Barrier(len(bodies))
    outcomes: list[Any] = [None] * len(bodies)

    def create(index: int) -> None:
        try:
            admin = User.objects.get(id=session_admin_id)
            barrier.wait()
            outcomes[index] = make_portal(admin, **bodies[index])
            run_jobs()  # as a worker would: the winner's committed refill job tops the pool up again
        except Exception as exc:
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(index,)) for index in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def _delete_committed(portal: Portal) -> None:
    def delete() -> None:
        try:
            portal_delete(portal=portal)
        finally:
            connection.close()

    thread = threading.Thread(target=delete)
    thread.start()
    thread.join(timeout=60)


@pytest.mark.parametrize(
    ("bodies", "loc"),
    [
        ([{"name": "Race", "slug": "race-slug"}] * 3, ("slug",)),
        (
            [{"name": f"Race {n}", "slug": f"race-domain-{n}", "custom_domain": "race.example.com"} for n in range(3)],
            ("custom_domain",),
        ),
    ],
    ids=["same-slug", "same-custom-domain"],
)
def test_concurrent_creates_one_wins_the_rest_get_422_and_no_orphan(session_admin, spare_pool, bodies, loc):
    outcomes = _race(session_admin.id, bodies)
    try:
        winners = [outcome for outcome in outcomes if isinstance(outcome, Portal)]
        losers = [outcome for outcome in outcomes if not isinstance(outcome, Portal)]
        assert len(winners) == 1, outcomes
        assert all(isinstance(loser, PortalsError) for loser in losers), losers
        assert all(loser.field_errors[0].loc == loc for loser in losers)
        # Every spare row still has its schema, and no schema was left without a row.
        spare_rows = set(Portal.objects.filter(is_spare=True).values_list("schema_name", flat=True))
        assert spare_rows == _schemas("spare_")
        assert winners[0].schema_name in _schemas("portal_")
        assert not _portal_schemas_without_a_row()
    finally:
        for winner in [outcome for outcome in outcomes if isinstance(outcome, Portal)]:
            _delete_committed(winner)
    assert not _schemas(winners[0].schema_name)
