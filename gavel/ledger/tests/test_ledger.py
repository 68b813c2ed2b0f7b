from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from gavel.ledger.models import JournalEntry, LedgerAccount, Posting
from gavel.ledger.selectors import account_balance, ledger_is_balanced, trial_balance
from gavel.ledger.services import LedgerError, credit, debit, entry_post

ASSET = LedgerAccount.Kind.ASSET
LIABILITY = LedgerAccount.Kind.LIABILITY


@pytest.mark.django_db
def test_balanced_entry_posts_once_per_reference() -> None:
    lines = [
        debit("platform:stripe_balance", ASSET, 1000, "usd"),
        credit("seller_payable:acct_1", LIABILITY, 1000, "usd"),
    ]
    entry, created = entry_post(reference="op-1", kind="charge", lines=lines)
    again, created_again = entry_post(reference="op-1", kind="charge", lines=lines)
    assert created is True
    assert created_again is False
    assert again.pk == entry.pk
    assert Posting.objects.count() == 2
    assert account_balance(code="platform:stripe_balance", currency="USD") == 1000
    assert account_balance(code="seller_payable:acct_1", currency="USD") == -1000
    assert trial_balance() == {"USD": 0}
    assert ledger_is_balanced()


@pytest.mark.django_db
def test_unbalanced_or_empty_entries_are_refused_and_write_nothing() -> None:
    with pytest.raises(LedgerError):
        entry_post(
            reference="bad",
            kind="charge",
            lines=[
                debit("a", ASSET, 100, "USD"),
                credit("b", LIABILITY, 99, "USD"),
            ],
        )
    with pytest.raises(LedgerError):
        entry_post(
            reference="mixed",
            kind="charge",
            lines=[debit("a", ASSET, 100, "USD"), credit("b", LIABILITY, 100, "EUR")],
        )
    with pytest.raises(LedgerError):
        entry_post(reference="zero", kind="charge", lines=[debit("a", ASSET, 0, "USD")])
    assert JournalEntry.objects.count() == 0
    assert LedgerAccount.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_database_refuses_an_unbalanced_entry_written_behind_the_service() -> None:
    account = LedgerAccount.objects.create(code="a", kind=ASSET)

    def write_one_sided_entry() -> None:
        with transaction.atomic():
            entry = JournalEntry.objects.create(
                reference="raw", kind="x", occurred_at=timezone.now()
            )
            Posting.objects.create(entry=entry, account=account, amount_minor=5, currency="USD")

    with pytest.raises(IntegrityError):
        write_one_sided_entry()
    assert JournalEntry.objects.filter(reference="raw").count() == 0


@pytest.mark.django_db(transaction=True)
def test_ledger_rows_cannot_be_updated_or_deleted() -> None:
    entry, _ = entry_post(
        reference="op-2",
        kind="charge",
        lines=[debit("a", ASSET, 100, "USD"), credit("b", LIABILITY, 100, "USD")],
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Posting.objects.filter(entry=entry).update(amount_minor=1)
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM ledger_journalentry WHERE id = %s", [entry.pk])
    assert sorted(Posting.objects.values_list("amount_minor", flat=True)) == [-100, 100]


@pytest.mark.django_db(transaction=True)
def test_each_insert_statement_must_leave_every_entry_it_touches_balanced() -> None:
    """The guard is per statement: an entry's postings go in together, and one unbalanced
    entry refuses the whole statement (a balanced neighbour in it included)."""
    a = LedgerAccount.objects.create(code="a", kind=ASSET)
    b = LedgerAccount.objects.create(code="b", kind=LIABILITY)
    now = timezone.now()

    def two_entries_one_unbalanced() -> None:
        with transaction.atomic():
            good = JournalEntry.objects.create(reference="good", kind="x", occurred_at=now)
            bad = JournalEntry.objects.create(reference="bad", kind="x", occurred_at=now)
            Posting.objects.bulk_create(
                [
                    Posting(entry=good, account=a, amount_minor=7, currency="USD"),
                    Posting(entry=good, account=b, amount_minor=-7, currency="USD"),
                    Posting(entry=bad, account=a, amount_minor=7, currency="USD"),
                    Posting(entry=bad, account=b, amount_minor=-7, currency="EUR"),
                ]
            )

    def one_entry_in_two_statements() -> None:
        with transaction.atomic():
            split = JournalEntry.objects.create(reference="split", kind="x", occurred_at=now)
            Posting.objects.create(entry=split, account=a, amount_minor=3, currency="USD")
            Posting.objects.create(entry=split, account=b, amount_minor=-3, currency="USD")

    with pytest.raises(IntegrityError):
        two_entries_one_unbalanced()
    with pytest.raises(IntegrityError):
        one_entry_in_two_statements()
    assert JournalEntry.objects.count() == 0
    assert Posting.objects.count() == 0
    with transaction.atomic():
        later = JournalEntry.objects.create(reference="later", kind="x", occurred_at=now)
        Posting.objects.bulk_create(
            [
                Posting(entry=later, account=a, amount_minor=3, currency="USD"),
                Posting(entry=later, account=b, amount_minor=-3, currency="USD"),
            ]
        )
        # A later balanced statement on the same entry keeps it balanced.
        Posting.objects.bulk_create(
            [
                Posting(entry=later, account=a, amount_minor=1, currency="EUR"),
                Posting(entry=later, account=b, amount_minor=-1, currency="EUR"),
            ]
        )
    assert trial_balance() == {"EUR": 0, "USD": 0}
