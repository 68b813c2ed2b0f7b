"""Payments, payouts and reconciliation: fees, funds flow, holds, refunds, disputes, cadence.

Amounts are integer minor units of the order's currency; rates are basis points.
"""

from __future__ import annotations

from gavel.settings.env import env_bool, env_datetime, env_int, env_str

# Auctions hands every sale to this task on the "payments" queue (gavel/settings/auctions.py).
AUCTIONS_HANDOFF_TASK = env_str("AUCTIONS_HANDOFF_TASK", "gavel.payments.tasks.sale_charge")

# Seller commission on the hammer price: rate plus fixed part, clamped to [minimum, maximum]
# (0 maximum: no maximum). FeeSchedule rows override it per category and per seller.
PAYMENTS_COMMISSION_RATE_BPS = env_int("PAYMENTS_COMMISSION_RATE_BPS", default=1_000)
PAYMENTS_COMMISSION_FIXED_MINOR = env_int("PAYMENTS_COMMISSION_FIXED_MINOR", default=0)
PAYMENTS_COMMISSION_MINIMUM_MINOR = env_int("PAYMENTS_COMMISSION_MINIMUM_MINOR", default=100)
PAYMENTS_COMMISSION_MAXIMUM_MINOR = env_int("PAYMENTS_COMMISSION_MAXIMUM_MINOR", default=0)
# Buyer's premium on the hammer price, and a fixed buyer's fee per lot.
PAYMENTS_BUYERS_PREMIUM_BPS = env_int("PAYMENTS_BUYERS_PREMIUM_BPS", default=500)
PAYMENTS_BUYER_FIXED_FEE_MINOR = env_int("PAYMENTS_BUYER_FIXED_FEE_MINOR", default=0)

# Funds flow: "separate_transfers" (charge on the platform, one transfer per seller with
# source_transaction) or "destination_charge" (single-seller orders only; the platform keeps
# an application fee). Buy-now purchases may use their own policy.
PAYMENTS_FUNDS_FLOW = env_str("PAYMENTS_FUNDS_FLOW", "separate_transfers")
PAYMENTS_BUY_NOW_FUNDS_FLOW = env_str("PAYMENTS_BUY_NOW_FUNDS_FLOW", "separate_transfers")
# Put every unpaid sale of one buyer (same currency) into the one checkout charged at close.
PAYMENTS_COMBINE_SALES = env_bool("PAYMENTS_COMBINE_SALES", default=True)
# Transfers to sellers are released when the buyer confirms receipt, or this long after the
# capture, whichever comes first.
PAYMENTS_TRANSFER_HOLD_SECONDS = env_int("PAYMENTS_TRANSFER_HOLD_SECONDS", default=7 * 86_400)

# Refunds: whether the buyer's premium is refunded in proportion (else refunds come from the
# hammer price only, so at most the hammer price can be refunded).
PAYMENTS_REFUND_BUYERS_PREMIUM = env_bool("PAYMENTS_REFUND_BUYERS_PREMIUM", default=True)
# Destination charges: refund the application fee in proportion with a refund.
PAYMENTS_REFUND_APPLICATION_FEE = env_bool("PAYMENTS_REFUND_APPLICATION_FEE", default=True)
# Disputes: sellers bear the disputed hammer share (their transfer is reversed when the dispute
# opens and given back if it is won); otherwise the platform bears disputes.
PAYMENTS_SELLERS_BEAR_DISPUTES = env_bool("PAYMENTS_SELLERS_BEAR_DISPUTES", default=True)

# Holds: "deposit" auctions authorize this share of the bidder's maximum; "authorization"
# auctions authorize the whole maximum. Stripe cancels an authorization after 7 days; holds
# are renewed this long before that.
PAYMENTS_HOLD_DEPOSIT_BPS = env_int("PAYMENTS_HOLD_DEPOSIT_BPS", default=1_000)
PAYMENTS_HOLD_LIFETIME_SECONDS = env_int("PAYMENTS_HOLD_LIFETIME_SECONDS", default=7 * 86_400)
PAYMENTS_HOLD_RENEW_BEFORE_SECONDS = env_int("PAYMENTS_HOLD_RENEW_BEFORE_SECONDS", default=86_400)

# Where the seller's connected account id comes from: a dotted selector taking user=.
PAYMENTS_SELLER_ACCOUNT_SELECTOR = env_str(
    "PAYMENTS_SELLER_ACCOUNT_SELECTOR", "gavel.connect.selectors.seller_account_id"
)

# Janitor: re-read operations left in creating/unknown for at least this long.
PAYMENTS_JANITOR_MIN_AGE_SECONDS = env_int("PAYMENTS_JANITOR_MIN_AGE_SECONDS", default=60)
PAYMENTS_JANITOR_INTERVAL_SECONDS = env_int("PAYMENTS_JANITOR_INTERVAL_SECONDS", default=300)
PAYMENTS_RELEASE_SCAN_SECONDS = env_int("PAYMENTS_RELEASE_SCAN_SECONDS", default=900)
PAYMENTS_HOLDS_SCAN_SECONDS = env_int("PAYMENTS_HOLDS_SCAN_SECONDS", default=3_600)

# Payouts: connected accounts are on a manual schedule; a run pays out each seller's
# available balance (at least the minimum) this often.
PAYOUTS_RUN_INTERVAL_SECONDS = env_int("PAYOUTS_RUN_INTERVAL_SECONDS", default=86_400)
PAYOUTS_MINIMUM_MINOR = env_int("PAYOUTS_MINIMUM_MINOR", default=100)

# Reconciliation of the ledger with Stripe's balance transactions.
RECONCILIATION_INTERVAL_SECONDS = env_int("RECONCILIATION_INTERVAL_SECONDS", default=86_400)

# Reconciliation starts here (ISO 8601 with offset; unset: all of Stripe's history). After a
# migration the balance transactions from before the cutover are the old system's, not in the
# ledger: set it to the instant Gavel took over (docs/legacy-cutover.md, step 4).
LEDGER_RECONCILE_SINCE = env_datetime("LEDGER_RECONCILE_SINCE")
