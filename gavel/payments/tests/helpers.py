"""Assertions shared by the payments tests."""

from __future__ import annotations

from gavel.ledger.reconciliation import reconciliation_run
from gavel.ledger.selectors import trial_balance


def assert_books_clean() -> None:
    """The ledger balances in every currency and matches Stripe to the cent."""
    assert all(total == 0 for total in trial_balance().values()), trial_balance()
    report = reconciliation_run()
    assert [d.describe() for d in report.differences] == []
