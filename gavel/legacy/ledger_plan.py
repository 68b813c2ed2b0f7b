"""What each legacy payment did to the books, as balanced ledger entries (pure functions).

One entry per step that happened, with reference ``legacy:stripe_payments:<id>:<step>``, so
posting the same payment again (a second run, a resumed run, a delta that adds a payout) only
posts the steps not posted yet. Accounts are the payments chart's (``gavel.ledger.accounts``,
docs/legacy-migration.md), so legacy and Gavel postings are one book:

- ``platform:stripe_balance`` (asset): the platform's Stripe balance.
- ``seller_payable:<acct id>`` (liability): owed to the seller until paid out
  (``seller_payable:person:<legacy person id>`` when the seller has no valid account id).
- ``revenue:commission``, ``revenue:buyers_premium`` (revenue): the seller's commission and
  the buyer's commission (the portal's buyer fee is Gavel's buyer's premium).
- ``expense:stripe_fees`` (expense): Stripe's real fee, paid by the platform.
- ``disputes:pending`` (asset): funds Stripe holds while a dispute is open.
- ``clearing:settled_outside_portal`` (liability): refunds the portal settled outside itself,
  without a Stripe call (``canceled`` after payment), to reconcile against the bank/Stripe.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gavel.ledger import accounts
from gavel.ledger.models import LedgerAccount
from gavel.ledger.services import Line, credit, debit
from gavel.legacy.states import CAPTURED_STATES, DISPUTE_STATES, LegacyState

K = LedgerAccount.Kind
STRIPE_BALANCE = accounts.PLATFORM_STRIPE_BALANCE.code
REVENUE_COMMISSION = accounts.COMMISSION_REVENUE.code
REVENUE_BUYER_FEE = accounts.BUYERS_PREMIUM_REVENUE.code
EXPENSE_STRIPE_FEES = accounts.STRIPE_FEES.code
DISPUTE_HOLDS = accounts.DISPUTES_PENDING.code
SETTLED_OUTSIDE = accounts.SETTLED_OUTSIDE_PORTAL.code
SELLER_PAYABLE_PREFIX = accounts.SELLER_PAYABLE_PREFIX


def seller_payable_code(*, stripe_seller_id: str | None, person_legacy_id: str) -> str:
    if stripe_seller_id:
        return accounts.seller_payable(stripe_seller_id).code
    return f"{SELLER_PAYABLE_PREFIX}person:{person_legacy_id}"


@dataclass(frozen=True, slots=True)
class PaymentFacts:
    """One staged payment with what its transaction's history says happened."""

    legacy_id: int
    final_state: str
    status: str
    currency: str  # upper case, supported
    sum_cents: int
    commission_cents: int
    buyer_commission_cents: int
    real_fee_cents: int | None
    seller_account: str  # seller_payable code
    paid_at: datetime | None
    disputed_at: datetime | None
    resolved_at: datetime | None  # refunded / dismissed / canceled
    transfered_at: datetime | None
    fallback_at: datetime

    @property
    def seller_net_cents(self) -> int:
        return self.sum_cents - self.commission_cents - self.buyer_commission_cents


@dataclass(frozen=True, slots=True)
class PlannedEntry:
    reference: str
    kind: str
    occurred_at: datetime
    lines: tuple[Line, ...]


def payment_entries(facts: PaymentFacts) -> list[PlannedEntry]:
    """The entries that reproduce what happened to one payment, in the order it happened."""
    state = facts.final_state
    if state not in CAPTURED_STATES:
        return []
    cur = facts.currency
    net = facts.seller_net_cents
    seller = facts.seller_account
    paid_at = facts.paid_at or facts.fallback_at
    prefix = f"legacy:stripe_payments:{facts.legacy_id}"

    def entry(step: str, at: datetime | None, *lines: Line) -> PlannedEntry:
        return PlannedEntry(f"{prefix}:{step}", f"legacy_{step}", at or paid_at, lines)

    # The capture and Stripe's fee are one balance transaction (amount, fee, net): one entry.
    fee = facts.real_fee_cents or 0
    entries = [
        entry(
            "capture",
            paid_at,
            debit(STRIPE_BALANCE, K.ASSET, facts.sum_cents - fee, cur),
            debit(EXPENSE_STRIPE_FEES, K.EXPENSE, fee, cur),
            credit(seller, K.LIABILITY, net, cur),
            credit(REVENUE_COMMISSION, K.REVENUE, facts.commission_cents, cur),
            credit(REVENUE_BUYER_FEE, K.REVENUE, facts.buyer_commission_cents, cur),
        )
    ]
    reversal = (
        debit(seller, K.LIABILITY, net, cur),
        debit(REVENUE_COMMISSION, K.REVENUE, facts.commission_cents, cur),
        debit(REVENUE_BUYER_FEE, K.REVENUE, facts.buyer_commission_cents, cur),
    )
    if state in DISPUTE_STATES:
        entries.append(
            entry(
                "dispute_opened",
                facts.disputed_at,
                debit(DISPUTE_HOLDS, K.ASSET, facts.sum_cents, cur),
                credit(STRIPE_BALANCE, K.ASSET, facts.sum_cents, cur),
            )
        )
    if state == LegacyState.REFUNDED:
        entries.append(
            entry(
                "dispute_lost",
                facts.resolved_at,
                *reversal,
                credit(DISPUTE_HOLDS, K.ASSET, facts.sum_cents, cur),
            )
        )
    elif state == LegacyState.DISMISSED:
        entries.append(
            entry(
                "dispute_won",
                facts.resolved_at,
                debit(STRIPE_BALANCE, K.ASSET, facts.sum_cents, cur),
                credit(DISPUTE_HOLDS, K.ASSET, facts.sum_cents, cur),
            )
        )
    elif state == LegacyState.CANCELED:
        entries.append(
            entry(
                "refund_outside",
                facts.resolved_at,
                *reversal,
                credit(SETTLED_OUTSIDE, K.LIABILITY, facts.sum_cents, cur),
            )
        )
    if facts.status == "transfered":
        entries.append(
            entry(
                "payout",
                facts.transfered_at,
                debit(seller, K.LIABILITY, net, cur),
                credit(STRIPE_BALANCE, K.ASSET, net, cur),
            )
        )
    return entries
