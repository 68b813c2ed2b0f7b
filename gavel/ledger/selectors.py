"""Reading the ledger: balances and the trial balance."""

from __future__ import annotations

from django.db.models import Sum

from gavel.ledger.models import Posting


def account_balance(*, code: str, currency: str) -> int:
    """Debits minus credits on one account in one currency, in minor units."""
    total = Posting.objects.filter(account__code=code, currency=currency.upper()).aggregate(
        total=Sum("amount_minor")
    )["total"]
    return int(total or 0)


def balances_by_account(*, prefix: str = "") -> dict[tuple[str, str], int]:
    rows = (
        Posting.objects.filter(account__code__startswith=prefix)
        .values("account__code", "currency")
        .annotate(total=Sum("amount_minor"))
        .order_by("account__code", "currency")
    )
    return {(row["account__code"], row["currency"]): int(row["total"]) for row in rows}


def trial_balance() -> dict[str, int]:
    """Sum of every posting per currency: all zeros when the books balance."""
    rows = Posting.objects.values("currency").annotate(total=Sum("amount_minor")).order_by()
    return {row["currency"]: int(row["total"]) for row in rows}


def ledger_is_balanced() -> bool:
    return all(total == 0 for total in trial_balance().values())
