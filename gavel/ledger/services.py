"""Posting to the ledger. Every money movement posts exactly one balanced entry."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from gavel.common.money import currency_normalize
from gavel.ledger.models import JournalEntry, LedgerAccount, Posting


class LedgerError(ValueError):
    """An entry that would break the books (unbalanced, empty, zero line)."""


@dataclass(frozen=True, slots=True)
class Line:
    account_code: str
    account_kind: LedgerAccount.Kind
    amount_minor: int  # debit positive, credit negative
    currency: str


def debit(code: str, kind: LedgerAccount.Kind, amount_minor: int, currency: str) -> Line:
    return Line(code, kind, amount_minor, currency)


def credit(code: str, kind: LedgerAccount.Kind, amount_minor: int, currency: str) -> Line:
    return Line(code, kind, -amount_minor, currency)


def _validate(lines: Sequence[Line]) -> list[Line]:
    kept = [line for line in lines if line.amount_minor != 0]
    if not kept:
        raise LedgerError("An entry needs at least one non-zero line")
    totals: dict[str, int] = defaultdict(int)
    for line in kept:
        totals[currency_normalize(line.currency)] += line.amount_minor
    unbalanced = {currency: total for currency, total in totals.items() if total != 0}
    if unbalanced:
        raise LedgerError(f"Entry does not balance: {unbalanced}")
    return kept


def entry_post(
    *,
    reference: str,
    kind: str,
    lines: Sequence[Line],
    description: str = "",
    occurred_at: datetime | None = None,
) -> tuple[JournalEntry, bool]:
    """Post one balanced entry; a repeated ``reference`` returns the first entry, unchanged.

    Returns (entry, created). Zero lines are dropped; an entry that does not sum to zero in
    every currency is refused with LedgerError before anything is written.
    """
    kept = _validate(lines)
    try:
        with transaction.atomic():
            entry = JournalEntry.objects.create(
                reference=reference,
                kind=kind,
                description=description,
                occurred_at=occurred_at or timezone.now(),
            )
            accounts = _accounts_ensure({(line.account_code, line.account_kind) for line in kept})
            Posting.objects.bulk_create(
                Posting(
                    entry=entry,
                    account=accounts[line.account_code],
                    amount_minor=line.amount_minor,
                    currency=currency_normalize(line.currency),
                )
                for line in kept
            )
    except IntegrityError:
        existing = JournalEntry.objects.filter(reference=reference).first()
        if existing is None:
            raise
        return existing, False
    return entry, True


def _accounts_ensure(wanted: set[tuple[str, LedgerAccount.Kind]]) -> dict[str, LedgerAccount]:
    codes = {code for code, _ in wanted}
    LedgerAccount.objects.bulk_create(
        [LedgerAccount(code=code, kind=kind) for code, kind in wanted],
        ignore_conflicts=True,
    )
    return {account.code: account for account in LedgerAccount.objects.filter(code__in=codes)}
