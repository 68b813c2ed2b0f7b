"""Set-based foreign key checks: PostgreSQL's row-by-row ones skipped for a transaction, every
guard trigger still firing, and a missing reference refused as PostgreSQL would refuse it."""

from __future__ import annotations

import psycopg
import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from conftest import database_dsn
from gavel.common.references import inserts_checked_in_bulk
from gavel.ledger.models import JournalEntry, LedgerAccount, Posting
from gavel.ledger.services import credit, debit, entry_post

pytestmark = pytest.mark.django_db

ASSET = LedgerAccount.Kind.ASSET
REVENUE = LedgerAccount.Kind.REVENUE


def _entry() -> JournalEntry:
    entry, _ = entry_post(
        reference="test:references",
        kind="test",
        lines=[debit("platform:cash", ASSET, 500, "EUR"), credit("revenue:x", REVENUE, 500, "EUR")],
    )
    return entry


def _role() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW session_replication_role")
        (role,) = cursor.fetchone()
    return str(role)


def _postings_insert(entry_id: int, account_id: int, amounts: tuple[int, ...]) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_posting (entry_id, account_id, amount_minor, currency)"
            " SELECT %s, %s, amount, 'EUR' FROM unnest(%s::bigint[]) amount RETURNING id",
            [entry_id, account_id, list(amounts)],
        )
        return [row[0] for row in cursor.fetchall()]


def test_a_missing_reference_is_refused_by_the_set_based_check() -> None:
    entry = _entry()
    account = LedgerAccount.objects.get(code="platform:cash")
    block = inserts_checked_in_bulk(Posting)
    is_set_based = block.__enter__()
    assert is_set_based
    assert _role() == "replica"
    # PostgreSQL lets a dangling entry id through: its row check is skipped...
    _postings_insert(entry.pk + 1000, account.pk, (700, -700))
    # ...and the block's check refuses it as the block ends.
    with pytest.raises(IntegrityError, match=f"key {entry.pk + 1000} is not present"):
        block.__exit__(None, None, None)
    assert _role() == "origin"


def test_existing_references_pass_and_are_locked(transactional_db) -> None:
    entry = _entry()
    account = LedgerAccount.objects.get(code="revenue:x")
    other = psycopg.connect(database_dsn(), autocommit=True)
    try:
        with transaction.atomic():
            with inserts_checked_in_bulk(Posting) as is_set_based:
                assert is_set_based
                _postings_insert(entry.pk, account.pk, (300, -300))
            # As PostgreSQL's own check would, the referenced rows are now locked FOR KEY
            # SHARE: nobody may delete them (or change their key) before this commits.
            for table, key in (
                ("ledger_journalentry", entry.pk),
                ("ledger_ledgeraccount", account.pk),
            ):
                with pytest.raises(psycopg.errors.LockNotAvailable):
                    other.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE NOWAIT", [key])  # noqa: S608
        other.execute(
            "SELECT 1 FROM ledger_ledgeraccount WHERE id = %s FOR UPDATE NOWAIT", [account.pk]
        )
    finally:
        other.close()


def test_guard_triggers_fire_even_when_row_checks_are_skipped() -> None:
    entry = _entry()
    account = LedgerAccount.objects.get(code="platform:cash")
    with inserts_checked_in_bulk(Posting) as is_set_based:
        assert is_set_based
        with pytest.raises(DatabaseError, match="balance"), transaction.atomic():
            _postings_insert(entry.pk, account.pk, (100,))  # unbalanced
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            Posting.objects.filter(entry=entry).update(amount_minor=1)


def test_a_role_not_allowed_to_skip_them_keeps_row_by_row_checks() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "DO $$ BEGIN CREATE ROLE gavel_test_plain NOLOGIN;"
            " EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )
        cursor.execute("SET LOCAL ROLE gavel_test_plain")
    try:
        with inserts_checked_in_bulk(Posting) as is_set_based:
            assert not is_set_based
            assert _role() == "origin"
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")


def test_the_setting_keeps_row_by_row_checks(settings) -> None:
    settings.SET_BASED_REFERENCE_CHECKS = False
    with inserts_checked_in_bulk(Posting) as is_set_based:
        assert not is_set_based
        assert _role() == "origin"
