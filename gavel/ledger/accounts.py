"""The chart of accounts (docs/ledger.md). Every code the payment flows post to is built here.

Sign convention (gavel.ledger.models): debit positive, credit negative. An asset's or
expense's balance is normally positive (debit), a liability's or revenue's normally negative
(credit).
"""

from __future__ import annotations

from dataclasses import dataclass

from gavel.ledger.models import LedgerAccount

Kind = LedgerAccount.Kind


@dataclass(frozen=True, slots=True)
class AccountSpec:
    code: str
    kind: LedgerAccount.Kind
    description: str


# Platform accounts (one each).
PLATFORM_STRIPE_BALANCE = AccountSpec(
    "platform:stripe_balance",
    Kind.ASSET,
    "The platform's Stripe balance (pending and available): mirrors its balance transactions",
)
BUYER_RECEIVABLE = AccountSpec(
    "buyer_receivable",
    Kind.ASSET,
    "What buyers owe for captured sales until the charge's balance transaction posts; "
    "cleared in the same entry, so it stays at zero unless a legacy import opens it",
)
COMMISSION_REVENUE = AccountSpec(
    "revenue:commission", Kind.REVENUE, "Seller commission on hammer prices"
)
BUYERS_PREMIUM_REVENUE = AccountSpec(
    "revenue:buyers_premium", Kind.REVENUE, "Buyer's premium and buyers' fixed fees"
)
STRIPE_FEES = AccountSpec(
    "expense:stripe_fees", Kind.EXPENSE, "Stripe processing fees, from balance transactions"
)
REFUNDS_ABSORBED = AccountSpec(
    "expense:refunds_absorbed",
    Kind.EXPENSE,
    "Refunded amounts the platform bears (seller share not recoverable by policy or balance)",
)
DISPUTE_FEES = AccountSpec(
    "expense:dispute_fees", Kind.EXPENSE, "Stripe's dispute fees (returned when a dispute is won)"
)
DISPUTE_LOSSES = AccountSpec(
    "expense:dispute_losses", Kind.EXPENSE, "Disputed amounts lost and not borne by sellers"
)
DISPUTES_PENDING = AccountSpec(
    "disputes:pending",
    Kind.ASSET,
    "Funds Stripe withdrew for open disputes, less what was recovered from sellers",
)
SETTLED_OUTSIDE_PORTAL = AccountSpec(
    "clearing:settled_outside_portal",
    Kind.LIABILITY,
    "Refunds the legacy portal settled outside itself (no Stripe call): reconcile against "
    "the Stripe dashboard and the bank",
)


def seller_payable(account_id: str) -> AccountSpec:
    """What the platform owes one seller (by connected account): held, or in the seller's
    Stripe balance awaiting payout. Negative only through a dispute (then flagged)."""
    return AccountSpec(
        f"seller_payable:{account_id}", Kind.LIABILITY, "Owed to the seller, not yet paid out"
    )


def connected_balance(account_id: str) -> AccountSpec:
    """The seller's Stripe balance (pending and available), which the platform pays out on a
    manual schedule: mirrors the connected account's balance transactions."""
    return AccountSpec(
        f"connected_balance:{account_id}", Kind.ASSET, "The connected account's Stripe balance"
    )


SELLER_PAYABLE_PREFIX = "seller_payable:"
CONNECTED_BALANCE_PREFIX = "connected_balance:"

PLATFORM_ACCOUNTS = (
    PLATFORM_STRIPE_BALANCE,
    BUYER_RECEIVABLE,
    COMMISSION_REVENUE,
    BUYERS_PREMIUM_REVENUE,
    STRIPE_FEES,
    REFUNDS_ABSORBED,
    DISPUTE_FEES,
    DISPUTE_LOSSES,
    DISPUTES_PENDING,
    SETTLED_OUTSIDE_PORTAL,
)


def account_id_of(code: str) -> str | None:
    """The connected account id in a per-seller code, else None."""
    for prefix in (SELLER_PAYABLE_PREFIX, CONNECTED_BALANCE_PREFIX):
        if code.startswith(prefix):
            return code[len(prefix) :]
    return None
