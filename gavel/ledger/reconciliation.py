"""Reconciliation: the ledger against Stripe's balance transactions, to the cent.

For the platform and for each connected account the ledger knows, every balance transaction
Stripe lists must be linked to a posting (``BalanceTransactionLink``) of the same net amount,
every link must name a transaction Stripe has, and the ledger's balance account
(``platform:stripe_balance`` / ``connected_balance:<acct>``) must equal the sum of Stripe's
transactions in each currency. Every difference is reported with its id and amounts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Sum

from gavel.gateway import balance as gateway_balance
from gavel.ledger import accounts
from gavel.ledger.models import BalanceTransactionLink, LedgerAccount, Posting


@dataclass(frozen=True, slots=True)
class Difference:
    scope: str  # "platform" or the connected account id
    kind: str  # missing_in_ledger | missing_in_stripe | amount_mismatch | balance_mismatch
    reference: str  # balance transaction id, or the ledger account code
    currency: str
    ledger_minor: int
    stripe_minor: int

    def describe(self) -> str:
        return (
            f"{self.scope} {self.kind} {self.reference} {self.currency}: "
            f"ledger {self.ledger_minor}, stripe {self.stripe_minor}"
        )


@dataclass
class ReconciliationReport:
    scopes: list[str] = field(default_factory=list)
    transactions_compared: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def is_clean(self) -> bool:
        return not self.differences


def connected_accounts_in_ledger() -> list[str]:
    codes = LedgerAccount.objects.filter(
        code__startswith=accounts.CONNECTED_BALANCE_PREFIX
    ).values_list("code", flat=True)
    linked = BalanceTransactionLink.objects.exclude(stripe_account="").values_list(
        "stripe_account", flat=True
    )
    found = {code[len(accounts.CONNECTED_BALANCE_PREFIX) :] for code in codes} | set(linked)
    return sorted(found)


def _ledger_balances(code: str) -> dict[str, int]:
    rows = (
        Posting.objects.filter(account__code=code)
        .values("currency")
        .annotate(total=Sum("amount_minor"))
        .order_by()
    )
    return {row["currency"]: int(row["total"]) for row in rows}


def reconcile_scope(*, account_id: str | None) -> tuple[int, list[Difference]]:
    scope = account_id or "platform"
    code = (
        accounts.connected_balance(account_id).code
        if account_id
        else accounts.PLATFORM_STRIPE_BALANCE.code
    )
    links = {
        link.balance_transaction_id: link
        for link in BalanceTransactionLink.objects.filter(stripe_account=account_id or "")
    }
    differences: list[Difference] = []
    stripe_totals: dict[str, int] = defaultdict(int)
    seen: set[str] = set()
    compared = 0
    for transaction in gateway_balance.balance_transactions_list(account_id=account_id):
        compared += 1
        seen.add(transaction.id)
        stripe_totals[transaction.currency] += transaction.net_minor
        link = links.get(transaction.id)
        if link is None:
            differences.append(
                Difference(
                    scope,
                    "missing_in_ledger",
                    transaction.id,
                    transaction.currency,
                    0,
                    transaction.net_minor,
                )
            )
        elif link.amount_minor != transaction.net_minor or link.currency != transaction.currency:
            differences.append(
                Difference(
                    scope,
                    "amount_mismatch",
                    transaction.id,
                    transaction.currency,
                    link.amount_minor,
                    transaction.net_minor,
                )
            )
    for transaction_id, link in sorted(links.items()):
        if transaction_id not in seen:
            differences.append(
                Difference(
                    scope, "missing_in_stripe", transaction_id, link.currency, link.amount_minor, 0
                )
            )
    ledger_totals = _ledger_balances(code)
    for currency in sorted(set(ledger_totals) | set(stripe_totals)):
        ledger_total = ledger_totals.get(currency, 0)
        stripe_total = stripe_totals.get(currency, 0)
        if ledger_total != stripe_total:
            differences.append(
                Difference(scope, "balance_mismatch", code, currency, ledger_total, stripe_total)
            )
    return compared, differences


def reconciliation_run(*, account_ids: list[str] | None = None) -> ReconciliationReport:
    """Reconcile the platform and each connected account (default: all the ledger knows)."""
    report = ReconciliationReport()
    for account_id in [
        None,
        *(account_ids if account_ids is not None else connected_accounts_in_ledger()),
    ]:
        compared, differences = reconcile_scope(account_id=account_id)
        report.scopes.append(account_id or "platform")
        report.transactions_compared += compared
        report.differences += differences
    return report
