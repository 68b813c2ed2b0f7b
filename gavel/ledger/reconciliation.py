"""Reconciliation: the ledger against Stripe's balance transactions, to the cent.

For the platform and for each connected account the ledger knows, every balance transaction
Stripe lists must be linked to a posting (``BalanceTransactionLink``) of the same net amount,
every link must name a transaction Stripe has, and the ledger's balance account
(``platform:stripe_balance`` / ``connected_balance:<acct>``) must equal the sum of Stripe's
transactions in each currency. Every difference is reported with its id and amounts.

From a starting instant (``since``; ``settings.LEDGER_RECONCILE_SINCE`` by default) only what
happened on Stripe from then on is compared. After a migration, the balance transactions of
the old system's years are not the ledger's to link (the legacy import books that history from
the portal's own records, verified against them): reconciliation then starts when Gavel took
over. Each side counts the movements of the window:
- Stripe: the balance transactions created at or after ``since`` (listed with
  ``created[gte]``);
- the ledger: the postings to the balance account of the entries written at or after
  ``since``, less those that book a balance transaction from before it (a link whose
  ``stripe_created_at`` is earlier: an adopted legacy charge, an event from before the switch
  processed after it), plus the links to a transaction of the window whose entry was written
  before it. A link's amount is its posting to the balance account, so the two sides agree
  exactly when every movement of the window is booked once.
Links are checked one by one when their transaction is of the window (a link made before
``stripe_created_at`` was recorded counts by its entry's time).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db.models import Q, Sum

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
    since: datetime | None = None  # None: all of Stripe's history

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


def _ledger_balances(code: str, *, since: datetime | None, stripe_account: str) -> dict[str, int]:
    """The balance account's movement per currency: all of it, or that of the window (see
    the module docstring)."""
    postings = Posting.objects.filter(account__code=code)
    if since is not None:
        postings = postings.filter(entry__created_at__gte=since)
    totals: dict[str, int] = defaultdict(int)
    for row in postings.values("currency").annotate(total=Sum("amount_minor")).order_by():
        totals[row["currency"]] += int(row["total"])
    if since is not None:
        links = BalanceTransactionLink.objects.filter(stripe_account=stripe_account)
        for sign, window in (
            (-1, Q(stripe_created_at__lt=since, entry__created_at__gte=since)),
            (1, Q(stripe_created_at__gte=since, entry__created_at__lt=since)),
        ):
            for row in (
                links.filter(window).values("currency").annotate(total=Sum("amount_minor"))
            ).order_by():
                totals[row["currency"]] += sign * int(row["total"])
    return dict(totals)


def reconcile_scope(
    *, account_id: str | None, since: datetime | None = None
) -> tuple[int, list[Difference]]:
    scope = account_id or "platform"
    code = (
        accounts.connected_balance(account_id).code
        if account_id
        else accounts.PLATFORM_STRIPE_BALANCE.code
    )
    scope_links = BalanceTransactionLink.objects.filter(stripe_account=account_id or "")
    if since is not None:
        scope_links = scope_links.filter(
            Q(stripe_created_at__gte=since)
            | Q(stripe_created_at__isnull=True, entry__created_at__gte=since)
        )
    links = {link.balance_transaction_id: link for link in scope_links}
    differences: list[Difference] = []
    stripe_totals: dict[str, int] = defaultdict(int)
    seen: set[str] = set()
    compared = 0
    for transaction in gateway_balance.balance_transactions_list(
        account_id=account_id,
        # Stripe's times are whole seconds: one at or after ``since`` is a later second.
        created_from=None if since is None else math.ceil(since.timestamp()),
    ):
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
    ledger_totals = _ledger_balances(code, since=since, stripe_account=account_id or "")
    for currency in sorted(set(ledger_totals) | set(stripe_totals)):
        ledger_total = ledger_totals.get(currency, 0)
        stripe_total = stripe_totals.get(currency, 0)
        if ledger_total != stripe_total:
            differences.append(
                Difference(scope, "balance_mismatch", code, currency, ledger_total, stripe_total)
            )
    return compared, differences


def reconciliation_run(
    *, account_ids: list[str] | None = None, since: datetime | None = None
) -> ReconciliationReport:
    """Reconcile the platform and each connected account (default: all the ledger knows),
    from ``since`` (default: ``settings.LEDGER_RECONCILE_SINCE``; None there: everything)."""
    window: datetime | None = since if since is not None else settings.LEDGER_RECONCILE_SINCE
    report = ReconciliationReport(since=window)
    for account_id in [
        None,
        *(account_ids if account_ids is not None else connected_accounts_in_ledger()),
    ]:
        compared, differences = reconcile_scope(account_id=account_id, since=window)
        report.scopes.append(account_id or "platform")
        report.transactions_compared += compared
        report.differences += differences
    return report
