"""One legacy transaction written into a generated portal the way the portal writes it: the
buyer, the seller with their Stripe ids, the listing, the transaction, its transitions and its
``stripe_payments`` row. The in-flight tests make the payment for real in the sandbox first,
then write its ids here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gavel.legacy.connections import LegacyDatabase, database_connect

BUYER, SELLER = "LegacyBuyer0000000001", "LegacySeller000000001"
UNIT_PRICE, SELLER_COMMISSION, BUYER_COMMISSION = 10_000, 1_000, 500  # 10 % and 5 %
SUM = UNIT_PRICE + BUYER_COMMISSION
NET = UNIT_PRICE - SELLER_COMMISSION
TRANSACTION_ID = 900001

PREAUTHORIZED = ("not_started", "initiated", "preauthorized")
PAID = (*PREAUTHORIZED, "paid")
DISPUTED = (*PAID, "disputed")


@dataclass(frozen=True)
class PortalPayment:
    """What the portal recorded of the payment (ids of real sandbox objects)."""

    states: tuple[str, ...]
    intent_id: str
    status: str = "pending"  # stripe_payments.status: pending, paid, canceled, transfered
    intent_status: str = "requires_capture"
    charge_id: str | None = None
    real_fee_cents: int | None = None
    transfer_id: str | None = None


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")


def portal_transaction_write(
    database: LegacyDatabase,
    *,
    payment: PortalPayment,
    account_id: str,
    customer: str,
    transaction_id: int = TRANSACTION_ID,
    with_people: bool = True,
) -> int:
    """Write the rows (the people, their Stripe ids and the listing too unless
    ``with_people`` is False: written once per portal); returns the legacy transaction id."""
    start = datetime.now(UTC) - timedelta(days=1)
    at = [_stamp(start + timedelta(minutes=minute)) for minute in range(len(payment.states) + 1)]
    connection = database_connect(database, autocommit=True)
    try:
        cursor = connection.cursor()
        if with_people:
            _people_write(cursor, at[0], account_id=account_id, customer=customer)
        _transaction_write(cursor, at, payment, transaction_id)
    finally:
        connection.close()
    return transaction_id


def _people_write(cursor: Any, at: str, *, account_id: str, customer: str) -> None:
    for person, email in (
        (BUYER, "legacy.buyer@example.com"),
        (SELLER, "legacy.seller@example.com"),
    ):
        cursor.execute(
            "INSERT INTO people (id, uuid, community_id, created_at, updated_at, username,"
            " email, given_name, family_name) VALUES (%s, %s, 1, %s, %s, %s, %s, 'Legacy', %s)",
            [person, uuid.uuid4().bytes, at, at, person.lower(), email, person[6:12]],
        )
    cursor.execute(
        "INSERT INTO stripe_accounts (id, person_id, community_id, stripe_seller_id,"
        " created_at, updated_at) VALUES (900001, %s, 1, %s, %s, %s)",
        [SELLER, account_id, at, at],
    )
    cursor.execute(
        "INSERT INTO stripe_accounts (id, person_id, community_id, stripe_customer_id,"
        " created_at, updated_at) VALUES (900002, %s, 1, %s, %s, %s)",
        [BUYER, customer, at, at],
    )
    cursor.execute(
        "INSERT INTO listings (id, uuid, community_id, author_id, title, price_cents, currency,"
        " created_at, updated_at) VALUES (900001, %s, 1, %s, 'Legacy lot', %s, 'USD', %s, %s)",
        [uuid.uuid4().bytes, SELLER, UNIT_PRICE, at, at],
    )


def _transaction_write(
    cursor: Any, at: list[str], payment: PortalPayment, transaction_id: int
) -> None:
    last = at[-1]
    cursor.execute(
        "INSERT INTO transactions (id, starter_id, starter_uuid, listing_id, listing_uuid,"
        " listing_author_id, listing_author_uuid, community_id, current_state,"
        " last_transition_at, payment_gateway, payment_process, commission_from_seller,"
        " minimum_commission_cents, minimum_commission_currency, commission_from_buyer,"
        " minimum_buyer_fee_cents, minimum_buyer_fee_currency, listing_quantity,"
        " unit_price_cents, unit_price_currency, shipping_price_cents,"
        " automatic_confirmation_after_days, created_at, updated_at) VALUES (%s, %s, %s,"
        " 900001, %s, %s, %s, 1, %s, %s, 'stripe', 'preauthorize', 10, 0, 'USD',"
        " 5, 0, 'USD', 1, %s, 'USD', 0, 14, %s, %s)",
        [
            transaction_id,
            BUYER,
            uuid.uuid4().bytes,
            uuid.uuid4().bytes,
            SELLER,
            uuid.uuid4().bytes,
            payment.states[-1],
            last,
            UNIT_PRICE,
            at[0],
            last,
        ],
    )
    for sort_key, state in enumerate(payment.states, start=1):
        cursor.execute(
            "INSERT INTO transaction_transitions (id, to_state, sort_key, transaction_id,"
            " most_recent, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                transaction_id * 10 + sort_key,
                state,
                sort_key,
                transaction_id,
                sort_key == len(payment.states),
                at[sort_key],
                at[sort_key],
            ],
        )
    cursor.execute(
        "INSERT INTO stripe_payments (id, community_id, transaction_id, payer_id, receiver_id,"
        " status, sum_cents, commission_cents, currency, fee_cents, real_fee_cents,"
        " subtotal_cents, created_at, updated_at, buyer_commission_cents,"
        " stripe_payment_intent_id, stripe_payment_intent_status, stripe_charge_id,"
        " stripe_transfer_id) VALUES (%s, 1, %s, %s, %s, %s, %s, %s, 'USD', 0, %s, %s,"
        " %s, %s, %s, %s, %s, %s, %s)",
        [
            transaction_id,
            transaction_id,
            BUYER,
            SELLER,
            payment.status,
            SUM,
            SELLER_COMMISSION,
            payment.real_fee_cents,
            UNIT_PRICE,
            last,
            last,
            BUYER_COMMISSION,
            payment.intent_id,
            payment.intent_status,
            payment.charge_id,
            payment.transfer_id,
        ],
    )
