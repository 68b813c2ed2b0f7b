"""A first import builds the secondary indexes of the empty tables it fills after loading them
(ADR 0011), and adds their foreign keys back then (ADR 0012): the same indexes and keys as
before, whatever stops the run."""

from __future__ import annotations

import json
import threading
import time
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from conftest import database_dsn
from gavel.common.references import inserts_checked_in_bulk
from gavel.ledger.models import JournalEntry, LedgerAccount
from gavel.ledger.services import credit, debit, entry_post
from gavel.legacy.importer import (
    DEFER_INDEXES,
    RESTORE_INDEXES,
    STAGE_DEFER_INDEXES,
    STAGE_RESTORE_INDEXES,
    ImportOptions,
    legacy_import,
)
from gavel.legacy.indexes import (
    DEFERRABLE,
    RESTORE_RETRY_SECONDS,
    IndexBuilt,
    indexes_defer,
    indexes_missing,
    indexes_restore,
    table_filled_by_run,
)
from gavel.legacy.models import DeferredIndex, ImportCheckpoint, ImportRun
from gavel.legacy.staging import STAGING_MODELS
from gavel.legacy.tests.conftest import truncate_import
from gavel.legacy.verify import legacy_verify
from gavel.payments.models import Order
from gavel.users.models import User

TABLES = [model._meta.db_table for model in DEFERRABLE]
STAGING_TABLES = [model._meta.db_table for model in STAGING_MODELS.values()]
K = LedgerAccount.Kind


def _indexes(tables: list[str] = TABLES) -> dict[str, str]:
    """Every index of the deferrable tables (or of ``tables``): name -> definition."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s)", [tables]
        )
        return dict(cursor.fetchall())


def _foreign_keys(tables: list[str] = TABLES) -> dict[str, tuple[str, bool]]:
    """Every foreign key of the deferrable tables: name -> (definition, validated)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint"
            " WHERE conrelid::regclass::text = ANY(%s) AND contype = 'f'",
            [tables],
        )
        return {name: (definition, validated) for name, definition, validated in cursor}


def _entry_posted() -> None:
    """One journal entry: the ledger's tables hold rows, so their indexes are not deferred."""
    entry_post(
        reference="test:one",
        kind="test",
        lines=[
            debit("platform:stripe_balance", K.ASSET, 100, "EUR"),
            credit("revenue:commission", K.REVENUE, 100, "EUR"),
        ],
    )


def _run() -> ImportRun:
    return ImportRun.objects.create(
        mode=ImportRun.Mode.FULL, source="test", watermark="2026-01-01T00:00:00Z"
    )


@pytest.mark.django_db(transaction=True)
def test_deferred_indexes_are_the_secondary_ones_and_come_back_the_same():
    before, keys_before = _indexes(), _foreign_keys()
    assert "payments_ordertransition_order_id_d7dc1c06_fk_payments_order_id" in keys_before

    deferred = indexes_defer(run=_run())

    after_drop = _indexes()
    # The tables' own foreign keys go with their indexes (ADR 0012).
    assert _foreign_keys() == {}
    assert set(deferred) == (set(before) - set(after_drop)) | set(keys_before)
    assert set(deferred) == set(indexes_missing())
    # Kept: primary keys and unique indexes (ON CONFLICT relies on them); every other index
    # is deferred, the postings' entry index included (the balance trigger reads only the
    # statement's own rows).
    assert {name for name in after_drop if "_pkey" in name}
    assert "payments_order_legacy_reference_key" in after_drop
    assert "ledger_journalentry_reference_key" in after_drop
    assert all("UNIQUE" in definition or "_pkey" in name for name, definition in after_drop.items())
    assert {"order_status", "payments_ordertransition_order_id_d7dc1c06"} <= set(deferred)

    built = indexes_restore()

    assert sorted(index.name for index in built) == sorted(deferred)
    assert _indexes() == before
    assert _foreign_keys() == keys_before  # the same definitions, validated
    assert not DeferredIndex.objects.exists()
    assert indexes_restore() == []  # nothing left: a second call builds nothing


@pytest.mark.django_db(transaction=True)
def test_a_row_breaking_a_deferred_foreign_key_stops_its_restore():
    deferred = indexes_defer(run=_run())
    key = "payments_order_buyer_id_5f94ded7_fk_users_user_id"
    assert key in deferred

    def order_insert(buyer_id: int) -> None:
        with transaction.atomic(), inserts_checked_in_bulk(Order) as is_set_based:
            assert is_set_based
            Order.objects.create(
                buyer_id=buyer_id,
                kind=Order.Kind.LEGACY,
                funds_flow=Order.FundsFlow.DESTINATION_CHARGE,
                currency="EUR",
                subtotal_minor=100,
                total_minor=100,
            )

    # While the key is deferred, the page's checks check what PostgreSQL would: not it.
    order_insert(987654321)

    with pytest.raises(IntegrityError, match="987654321"):
        indexes_restore()

    # Nothing is lost: the key is still recorded as missing, and restored once the buyer
    # exists; from then on the page's checks check it again.
    assert key in indexes_missing()
    assert key not in _foreign_keys()
    User.objects.create(id=987654321, username="late-buyer", email="late-buyer@example.com")
    indexes_restore()
    assert _foreign_keys()[key][1] is True
    assert not DeferredIndex.objects.exists()
    with pytest.raises(IntegrityError, match="987654322"):
        order_insert(987654322)


@pytest.mark.django_db(transaction=True)
def test_a_restore_builds_what_it_can_lock_and_waits_for_a_writer():
    indexes_defer(run=_run())
    # What needs payments_order: its own indexes and keys, and the keys that reference it
    # (adding one locks the referenced table too).
    held = [
        deferred
        for deferred in DeferredIndex.objects.all()
        if deferred.table == "payments_order" or "REFERENCES payments_order(" in deferred.definition
    ]
    held_back = {deferred.name for deferred in held}
    assert "order_status" in held_back
    assert {deferred.table for deferred in held} >= {"payments_orderline", "payments_order"}
    writer = psycopg.connect(database_dsn())  # a transaction writing orders, still open
    writer.execute("LOCK TABLE payments_order IN ROW EXCLUSIVE MODE")
    built: list[IndexBuilt] = []
    failed: list[BaseException] = []

    def restore() -> None:
        try:
            built.extend(indexes_restore())
        except BaseException as error:  # noqa: BLE001 - handed to the test's thread
            failed.append(error)
        finally:
            connection.close()

    restoring = threading.Thread(target=restore)
    restoring.start()
    try:
        # Everything else is built meanwhile, none of it waiting behind the writer...
        deadline = time.monotonic() + 60
        while set(indexes_missing()) != held_back and time.monotonic() < deadline:
            time.sleep(0.05)
        assert set(indexes_missing()) == held_back
        time.sleep(3 * RESTORE_RETRY_SECONDS)
        assert restoring.is_alive()  # ...and the rest is tried again, not given up on
        assert set(indexes_missing()) == held_back
    finally:
        writer.commit()
        writer.close()
        restoring.join(timeout=60)
    assert not failed
    assert not restoring.is_alive()
    assert {index.name for index in built} >= held_back
    assert not DeferredIndex.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_restores_side_by_side_share_the_work():
    before, keys_before = _indexes(), _foreign_keys()
    deferred = indexes_defer(run=_run())
    results: list[list[IndexBuilt]] = [[], []]

    def restore(lane: int) -> None:
        try:
            results[lane] = indexes_restore()
        finally:
            connection.close()

    lanes = [threading.Thread(target=restore, args=(lane,)) for lane in range(2)]
    for lane in lanes:
        lane.start()
    for lane in lanes:
        lane.join(timeout=120)
    names = [index.name for result in results for index in result]
    assert sorted(names) == sorted(deferred)  # each built once, by one of them
    assert _indexes() == before
    assert _foreign_keys() == keys_before


@pytest.mark.django_db(transaction=True)
def test_a_table_with_rows_keeps_its_indexes():
    _entry_posted()

    deferred = indexes_defer(run=_run())

    posting_indexes = {
        name for name, definition in _indexes().items() if "ledger_posting " in definition
    }
    assert "posting_account_currency" in posting_indexes
    assert not [name for name in deferred if name in posting_indexes]
    assert "order_status" in deferred  # payments_order is still empty
    indexes_restore()


@pytest.mark.django_db(transaction=True)
def test_only_the_run_that_found_a_table_empty_may_insert_into_it_plainly():
    _entry_posted()
    first, other = _run(), _run()

    indexes_defer(run=first)

    assert table_filled_by_run(run=first, model=Order)  # empty when it looked
    assert not table_filled_by_run(run=first, model=JournalEntry)  # held an entry
    assert not table_filled_by_run(run=other, model=Order)  # deferred by another run
    indexes_restore()
    assert not table_filled_by_run(run=first, model=Order)  # indexes back: rows may clash


@pytest.mark.django_db(transaction=True)
def test_a_first_import_defers_and_builds_them(legacy_source):
    before, staging_before = _indexes(), _indexes(STAGING_TABLES)
    keys_before = _foreign_keys()

    run = legacy_import(database=legacy_source.database, options=ImportOptions(batch_size=200))

    steps = run.stats["steps"]
    assert steps[DEFER_INDEXES]["changed"] > 0
    assert steps[RESTORE_INDEXES]["changed"] == steps[DEFER_INDEXES]["changed"]
    assert _indexes() == before
    assert _foreign_keys() == keys_before
    # The staging tables' too, built after stage one.
    assert steps[STAGE_DEFER_INDEXES]["changed"] > 0
    assert steps[STAGE_RESTORE_INDEXES]["changed"] == steps[STAGE_DEFER_INDEXES]["changed"]
    assert _indexes(STAGING_TABLES) == staging_before
    assert not DeferredIndex.objects.exists()
    assert legacy_verify(database=legacy_source.database).difference_count == 0

    # A later run finds the tables filled: nothing deferred.
    again = legacy_import(database=legacy_source.database, options=ImportOptions(batch_size=200))
    assert again.stats["steps"][DEFER_INDEXES]["changed"] == 0
    assert again.stats["steps"][STAGE_DEFER_INDEXES]["changed"] == 0
    assert _indexes() == before
    truncate_import()


@pytest.mark.django_db(transaction=True)
def test_staging_indexes_a_stopped_run_left_are_built_before_the_checks(legacy_source, settings):
    staging_before = _indexes(STAGING_TABLES)
    stopped = _run()
    deferred = indexes_defer(run=stopped, written=STAGING_MODELS.values())
    assert {"legacy_transition_order"} <= set(deferred)
    gavel_deferred = indexes_defer(run=stopped)
    stopped.status = ImportRun.Status.FAILED
    stopped.save(update_fields=["status"])
    settings.LEGACY_IMPORT_DEFER_INDEXES = False

    run = legacy_import(database=legacy_source.database, options=ImportOptions(batch_size=200))

    # The staging tables' are built after stage one, Gavel's after stage two, as each run
    # defers them.
    steps = run.stats["steps"]
    assert steps[STAGE_RESTORE_INDEXES]["changed"] == len(deferred)
    assert steps[RESTORE_INDEXES]["changed"] == len(gavel_deferred)
    assert _indexes(STAGING_TABLES) == staging_before
    assert legacy_verify(database=legacy_source.database).difference_count == 0
    truncate_import()


@pytest.mark.django_db(transaction=True)
def test_indexes_a_stopped_run_deferred_are_built_by_the_command_or_the_next_run(
    legacy_source, settings
):
    before = _indexes()
    stopped = _run()
    deferred = indexes_defer(run=stopped)
    assert deferred

    out = StringIO()
    call_command("legacy_import", "--restore-indexes", stdout=out)

    assert sorted(json.loads(out.getvalue())["built"]) == sorted(deferred)
    assert _indexes() == before

    # Or the next run: its build step takes every index still recorded, any run's.
    indexes_defer(run=stopped)
    stopped.status = ImportRun.Status.FAILED
    stopped.save(update_fields=["status"])
    settings.LEGACY_IMPORT_DEFER_INDEXES = False
    run = legacy_import(database=legacy_source.database, options=ImportOptions(batch_size=200))
    assert run.stats["steps"][DEFER_INDEXES]["changed"] == 0
    assert run.stats["steps"][RESTORE_INDEXES]["changed"] == len(deferred)
    assert _indexes() == before
    truncate_import()


@pytest.mark.django_db
def test_a_dry_run_defers_nothing(legacy_source):
    run = legacy_import(
        database=legacy_source.database, options=ImportOptions(is_dry_run=True, batch_size=200)
    )
    assert run.stats["steps"][DEFER_INDEXES]["changed"] == 0
    assert run.stats["steps"][STAGE_DEFER_INDEXES]["changed"] == 0
    assert not ImportCheckpoint.objects.exists()  # rolled back
