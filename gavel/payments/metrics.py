"""Domain metrics of payments and payouts."""

from __future__ import annotations

from prometheus_client import Counter

CHARGE_ATTEMPTS = Counter(
    "gavel_payments_charge_attempts_total", "PaymentIntents sent (re-sends included)", ["purpose"]
)
CAPTURED_MINOR = Counter(
    "gavel_payments_captured_minor_total", "Captured amounts, minor units", ["currency"]
)
OUTCOMES_UNKNOWN = Counter(
    "gavel_payments_outcomes_unknown_total", "Stripe calls whose outcome was unknown", ["operation"]
)
TRANSFERS = Counter(
    "gavel_payments_transfers_total", "Transfers to sellers by outcome", ["outcome"]
)
REFUNDS = Counter("gavel_payments_refunds_total", "Refunds by outcome", ["outcome"])
DISPUTES = Counter("gavel_payments_disputes_total", "Disputes by event", ["event"])
JANITOR_SETTLED = Counter(
    "gavel_payments_janitor_settled_total", "Uncertain operations the janitor settled", ["kind"]
)
JANITOR_FAILED = Counter(
    "gavel_payments_janitor_failed_total", "Janitor items that failed (logged, retried)", ["kind"]
)
NEGATIVE_SELLER_BALANCES = Counter(
    "gavel_payments_negative_seller_balances_total", "Seller payables flagged negative"
)
