"""The legacy portal's transaction state machine, and its anomaly vocabulary.

The machine is data: ``ALLOWED_MOVES`` is the portal's own transition table. Two states are
deprecated (``pending``, ``accepted``): old transactions passed through them by moves the
current machine no longer has; those moves are listed apart so the importer can say so.
"""

from __future__ import annotations

import enum


class LegacyState(enum.StrEnum):
    NOT_STARTED = "not_started"
    FREE = "free"
    INITIATED = "initiated"
    PENDING = "pending"  # deprecated
    PAYMENT_INTENT_REQUIRES_ACTION = "payment_intent_requires_action"
    PREAUTHORIZED = "preauthorized"
    PENDING_EXT = "pending_ext"
    ACCEPTED = "accepted"  # deprecated
    REJECTED = "rejected"
    ERRORED = "errored"
    PAID = "paid"
    CONFIRMED = "confirmed"
    CANCELED = "canceled"
    PAYMENT_INTENT_ACTION_EXPIRED = "payment_intent_action_expired"
    PAYMENT_INTENT_FAILED = "payment_intent_failed"
    REFUNDED = "refunded"
    DISMISSED = "dismissed"
    DISPUTED = "disputed"


S = LegacyState

ALLOWED_MOVES: dict[LegacyState, frozenset[LegacyState]] = {
    S.NOT_STARTED: frozenset({S.FREE, S.INITIATED}),
    S.INITIATED: frozenset({S.PAYMENT_INTENT_REQUIRES_ACTION, S.PREAUTHORIZED}),
    S.PAYMENT_INTENT_REQUIRES_ACTION: frozenset(
        {S.PREAUTHORIZED, S.PAYMENT_INTENT_ACTION_EXPIRED, S.PAYMENT_INTENT_FAILED}
    ),
    S.PREAUTHORIZED: frozenset({S.PAID, S.REJECTED, S.PENDING_EXT, S.ERRORED}),
    S.PENDING_EXT: frozenset({S.PAID, S.REJECTED}),
    S.PAID: frozenset({S.CONFIRMED, S.CANCELED, S.DISPUTED}),
    S.DISPUTED: frozenset({S.REFUNDED, S.DISMISSED}),
}

# Moves of the portal's early request/accept flow (payment_process "none"), before the
# preauthorize flow replaced it. Reported as ``deprecated_state``, not as not allowed.
DEPRECATED_MOVES: dict[LegacyState, frozenset[LegacyState]] = {
    S.NOT_STARTED: frozenset({S.PENDING}),
    S.PENDING: frozenset({S.ACCEPTED, S.REJECTED}),
    S.ACCEPTED: frozenset({S.PAID, S.CONFIRMED, S.CANCELED}),
}

INITIAL_STATE = S.NOT_STARTED
DEPRECATED_STATES = frozenset({S.PENDING, S.ACCEPTED})

# Final transaction states in which the buyer's money was captured at some point.
CAPTURED_STATES = frozenset({S.PAID, S.CONFIRMED, S.CANCELED, S.DISPUTED, S.REFUNDED, S.DISMISSED})
DISPUTE_STATES = frozenset({S.DISPUTED, S.REFUNDED, S.DISMISSED})

# stripe_payments.status the portal leaves for each final transaction state.
EXPECTED_PAYMENT_STATUSES: dict[LegacyState, frozenset[str]] = {
    S.INITIATED: frozenset({"pending"}),
    S.PAYMENT_INTENT_REQUIRES_ACTION: frozenset({"pending"}),
    S.PREAUTHORIZED: frozenset({"pending"}),
    S.PENDING_EXT: frozenset({"pending"}),
    S.PAYMENT_INTENT_ACTION_EXPIRED: frozenset({"canceled"}),
    S.PAYMENT_INTENT_FAILED: frozenset({"canceled"}),
    S.REJECTED: frozenset({"canceled"}),
    S.ERRORED: frozenset({"canceled"}),
    S.PAID: frozenset({"paid"}),
    S.DISPUTED: frozenset({"paid"}),
    S.CONFIRMED: frozenset({"paid", "transfered"}),
    S.DISMISSED: frozenset({"paid", "transfered"}),
    S.CANCELED: frozenset({"canceled"}),
    S.REFUNDED: frozenset({"canceled"}),
}


def move_kind(from_state: str | None, to_state: str) -> str:
    """``allowed``, ``deprecated`` or ``not_allowed`` for one step of a history."""
    try:
        target = LegacyState(to_state)
    except ValueError:
        return "not_allowed"
    if from_state is None:
        return "allowed" if target is INITIAL_STATE else "not_allowed"
    try:
        source = LegacyState(from_state)
    except ValueError:
        return "not_allowed"
    if target in ALLOWED_MOVES.get(source, frozenset()):
        return "allowed"
    if target in DEPRECATED_MOVES.get(source, frozenset()):
        return "deprecated"
    return "not_allowed"


class AnomalyKind(enum.StrEnum):
    """Every anomaly the reader reports. Blocking ones keep the row out of the load."""

    NULL_MONEY = "null_money"
    INVALID_STRIPE_ID = "invalid_stripe_id"
    STATE_MISMATCH = "state_mismatch"
    CURRENCY_CASE = "currency_case"
    UNKNOWN_CURRENCY = "unknown_currency"
    ORPHAN_PAYMENT = "orphan_payment"
    PERSON_DELETED = "person_deleted"
    PERSON_MISSING = "person_missing"
    DUPLICATE_STRIPE_ID = "duplicate_stripe_id"
    TRANSITION_OUT_OF_ORDER = "transition_out_of_order"
    TRANSITION_NOT_ALLOWED = "transition_not_allowed"
    DEPRECATED_STATE = "deprecated_state"
    STUCK_REQUIRES_ACTION = "stuck_requires_action"
    PAYMENT_STATUS_MISMATCH = "payment_status_mismatch"
    AMOUNT_MISMATCH = "amount_mismatch"
    EMAIL_CONFLICT = "email_conflict"
    ACCOUNT_CONFLICT = "account_conflict"
    CUSTOMER_CONFLICT = "customer_conflict"
    ORDER_MOVE_REFUSED = "order_move_refused"
    SELLER_WITHOUT_USER = "seller_without_user"
    NEGATIVE_MONEY = "negative_money"
    # A transaction whose buyer or seller got no Gavel user (an ``email_conflict``): no order.
    PERSON_WITHOUT_USER = "person_without_user"
    # A payment whose capture Gavel posted, and whose amounts the portal changed since.
    POSTED_AMOUNTS_CHANGED = "posted_amounts_changed"
    # Imported as they are (the money moved), listed for a human: a soft-deleted transaction,
    # and one with more than one ``stripe_payments`` row (each is posted; the order carries
    # the amounts of the first by id).
    TRANSACTION_DELETED = "transaction_deleted"
    SEVERAL_PAYMENTS = "several_payments"
    # A Stripe transaction whose terms the portal's rules cannot price: a quantity below one,
    # a negative commission percentage, a minimum fee in another currency than the price, or
    # nothing to charge (item total and shipping zero).
    INVALID_TERMS = "invalid_terms"
    # A payment whose receiver is not its transaction's seller (or is missing): the ledger
    # would owe one seller what the order says another sold.
    RECEIVER_MISMATCH = "receiver_mismatch"
    # A ``stripe_payments`` row of a transaction the portal says was not paid through Stripe.
    PAYMENT_GATEWAY_MISMATCH = "payment_gateway_mismatch"
    # A transaction in scope that the orders load could not make an order of for a reason no
    # other anomaly names (the safety net: never dropped in silence).
    ORDER_NOT_LOADED = "order_not_loaded"


BLOCKING_ANOMALIES = frozenset(
    {
        AnomalyKind.NULL_MONEY,
        AnomalyKind.STATE_MISMATCH,
        AnomalyKind.UNKNOWN_CURRENCY,
        AnomalyKind.ORPHAN_PAYMENT,
        AnomalyKind.PERSON_MISSING,
        AnomalyKind.DUPLICATE_STRIPE_ID,
        AnomalyKind.PAYMENT_STATUS_MISMATCH,
        AnomalyKind.EMAIL_CONFLICT,
        AnomalyKind.ACCOUNT_CONFLICT,
        AnomalyKind.SELLER_WITHOUT_USER,
        AnomalyKind.NEGATIVE_MONEY,
        AnomalyKind.PERSON_WITHOUT_USER,
        AnomalyKind.INVALID_TERMS,
        AnomalyKind.RECEIVER_MISMATCH,
        AnomalyKind.PAYMENT_GATEWAY_MISMATCH,
        AnomalyKind.ORDER_NOT_LOADED,
    }
)

# Blocking for the order only, and decided again by every orders load from the users there
# then: never a quarantine flag. A transaction whose buyer had no user (an ``email_conflict``)
# is tried again by each later run, and its payment, posted when it was found (the money
# moved), is not held back afterwards.
ORDER_LOAD_ANOMALIES = frozenset({AnomalyKind.PERSON_WITHOUT_USER, AnomalyKind.ORDER_NOT_LOADED})


# Every legacy state -> the status of Gavel's order state machine (gavel.payments Order.Status)
# and why. Only Stripe transactions become Gavel orders; "none" and "paypal" ones moved no
# Stripe money and stay in the staging tables (docs/legacy-migration.md).
GAVEL_ORDER_STATUS: dict[LegacyState, tuple[str, str]] = {
    S.NOT_STARTED: ("pending", "created, no payment attempted"),
    S.FREE: ("", "no payment: never an order (nothing to charge), kept in staging"),
    S.INITIATED: ("pending", "PaymentIntent created, not confirmed"),
    S.PENDING: ("pending", "deprecated request flow: requested, not paid"),
    S.PAYMENT_INTENT_REQUIRES_ACTION: ("requires_action", "waiting for 3-D Secure"),
    S.PAYMENT_INTENT_ACTION_EXPIRED: ("canceled", "3-D Secure never completed"),
    S.PAYMENT_INTENT_FAILED: ("failed", "declined or authentication failed"),
    S.PREAUTHORIZED: ("authorized", "authorized, manual capture pending"),
    S.PENDING_EXT: ("authorized", "authorized, extended while the seller decides"),
    S.ACCEPTED: ("pending", "deprecated request flow: accepted, not paid"),
    S.REJECTED: ("canceled", "seller rejected or did not answer: authorization released"),
    S.ERRORED: ("failed", "capture failed: authorization released"),
    S.PAID: ("captured", "captured; transfer held until the buyer confirms"),
    S.CONFIRMED: ("captured", "captured and confirmed; transferred once paid out"),
    S.CANCELED: ("refunded", "captured, then refunded outside the portal"),
    S.REFUNDED: ("dispute_lost", "disputed and lost: the buyer got the money back"),
    S.DISMISSED: ("captured", "disputed and won"),
    S.DISPUTED: ("disputed", "dispute open"),
}
