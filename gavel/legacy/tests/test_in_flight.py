"""An in-flight legacy payment carried on by Gavel: the portal's state made for real in the
Stripe sandbox, its rows written into a generated portal, imported, then captured, confirmed
and paid out by Gavel's payment services."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from gavel.auctions.models import BuyerCustomer
from gavel.connect.models import ConnectedAccount
from gavel.connect.services import connected_account_refresh
from gavel.ledger.selectors import account_balance
from gavel.legacy.connections import database_connect
from gavel.legacy.importer import ImportOptions, legacy_import
from gavel.legacy.orders import orders_in_flight_adopt
from gavel.legacy.tests.conftest import LegacySourceFixture, generated
from gavel.payments.models import Order, PaymentAttempt, SellerTransfer
from gavel.payments.services.charging import order_capture
from gavel.payments.services.transfers import order_receipt_confirm
from gavel.payments.tests.helpers import assert_books_clean
from gavel.payouts.models import Payout
from gavel.payouts.services import payout_run
from gavel.users.models import User

pytestmark = pytest.mark.django_db

BUYER, SELLER = "LegacyBuyer0000000001", "LegacySeller000000001"
UNIT_PRICE, SELLER_COMMISSION, BUYER_COMMISSION = 10_000, 1_000, 500  # 10 % and 5 %
SUM = UNIT_PRICE + BUYER_COMMISSION


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")


def _rows_write(
    source: LegacySourceFixture, *, intent_id: str, account_id: str, customer: str
) -> int:
    """The portal's rows for one preauthorized transaction, as the portal writes them."""
    start = datetime.now(UTC) - timedelta(days=1)
    at = [_stamp(start + timedelta(minutes=minute)) for minute in range(4)]
    connection = database_connect(source.database, autocommit=True)
    try:
        cursor = connection.cursor()
        for person, email in (
            (BUYER, "legacy.buyer@example.com"),
            (SELLER, "legacy.seller@example.com"),
        ):
            cursor.execute(
                "INSERT INTO people (id, uuid, community_id, created_at, updated_at, username,"
                " email, given_name, family_name) VALUES (%s, %s, 1, %s, %s, %s, %s, 'Legacy', %s)",
                [person, uuid.uuid4().bytes, at[0], at[0], person.lower(), email, person[6:12]],
            )
        cursor.execute(
            "INSERT INTO stripe_accounts (id, person_id, community_id, stripe_seller_id,"
            " created_at, updated_at) VALUES (900001, %s, 1, %s, %s, %s)",
            [SELLER, account_id, at[0], at[0]],
        )
        cursor.execute(
            "INSERT INTO stripe_accounts (id, person_id, community_id, stripe_customer_id,"
            " created_at, updated_at) VALUES (900002, %s, 1, %s, %s, %s)",
            [BUYER, customer, at[0], at[0]],
        )
        cursor.execute(
            "INSERT INTO listings (id, uuid, community_id, author_id, title, price_cents, currency,"
            " created_at, updated_at) VALUES (900001, %s, 1, %s, 'Legacy lot', %s, 'USD', %s, %s)",
            [uuid.uuid4().bytes, SELLER, UNIT_PRICE, at[0], at[0]],
        )
        cursor.execute(
            "INSERT INTO transactions (id, starter_id, starter_uuid, listing_id, listing_uuid,"
            " listing_author_id, listing_author_uuid, community_id, current_state,"
            " last_transition_at, payment_gateway, payment_process, commission_from_seller,"
            " minimum_commission_cents, minimum_commission_currency, commission_from_buyer,"
            " minimum_buyer_fee_cents, minimum_buyer_fee_currency, listing_quantity,"
            " unit_price_cents, unit_price_currency, shipping_price_cents,"
            " automatic_confirmation_after_days, created_at, updated_at) VALUES (900001, %s, %s,"
            " 900001, %s, %s, %s, 1, 'preauthorized', %s, 'stripe', 'preauthorize', 10, 0, 'USD',"
            " 5, 0, 'USD', 1, %s, 'USD', 0, 14, %s, %s)",
            [
                BUYER,
                uuid.uuid4().bytes,
                uuid.uuid4().bytes,
                SELLER,
                uuid.uuid4().bytes,
                at[3],
                UNIT_PRICE,
                at[0],
                at[3],
            ],
        )
        for sort_key, state in enumerate(("not_started", "initiated", "preauthorized"), start=1):
            cursor.execute(
                "INSERT INTO transaction_transitions (id, to_state, sort_key, transaction_id,"
                " most_recent, created_at, updated_at) VALUES (%s, %s, %s, 900001, %s, %s, %s)",
                [
                    900000 + sort_key,
                    state,
                    sort_key,
                    state == "preauthorized",
                    at[sort_key],
                    at[sort_key],
                ],
            )
        cursor.execute(
            "INSERT INTO stripe_payments (id, community_id, transaction_id, payer_id, receiver_id,"
            " status, sum_cents, commission_cents, currency, fee_cents, subtotal_cents,"
            " created_at, updated_at, buyer_commission_cents, stripe_payment_intent_id,"
            " stripe_payment_intent_status) VALUES (900001, 1, 900001, %s, %s, 'pending', %s,"
            " %s, 'USD', 0, %s, %s, %s, %s, %s, 'requires_capture')",
            [
                BUYER,
                SELLER,
                SUM,
                SELLER_COMMISSION,
                UNIT_PRICE,
                at[3],
                at[3],
                BUYER_COMMISSION,
                intent_id,
            ],
        )
    finally:
        connection.close()
    return 900001


@pytest.mark.parametrize("dialect", ["postgres", "mysql"])
def test_an_in_flight_preauthorization_is_captured_confirmed_and_paid_out_by_gavel(
    sandbox: Any, dialect: str
) -> None:
    client = sandbox.client()
    account = client.v1.accounts.create(
        params={
            "country": "US",
            "controller": {
                "fees": {"payer": "application"},
                "losses": {"payments": "application"},
                "stripe_dashboard": {"type": "express"},
                "requirement_collection": "stripe",
            },
            "capabilities": {
                "card_payments": {"requested": True},
                "transfers": {"requested": True},
            },
        }
    )
    sandbox.complete_onboarding(account.id)
    customer = client.v1.customers.create(params={"email": "legacy.buyer@example.com"})
    # The portal's preauthorize flow: a manual-capture destination charge, authorized.
    intent = client.v1.payment_intents.create(
        params={
            "amount": SUM,
            "currency": "usd",
            "customer": customer.id,
            "payment_method": "pm_card_visa",
            "confirm": True,
            "capture_method": "manual",
            "transfer_data": {"destination": account.id},
            "application_fee_amount": SELLER_COMMISSION + BUYER_COMMISSION,
        }
    )
    assert intent.status == "requires_capture"
    source = generated(dialect, f"in_flight_{os.getpid()}", payments=0)
    transaction_id = _rows_write(
        source, intent_id=intent.id, account_id=account.id, customer=customer.id
    )

    legacy_import(database=source.database, options=ImportOptions(is_resumable=False))

    order = Order.objects.get(legacy_reference=f"legacy:transactions:{transaction_id}")
    buyer = User.objects.get(legacy_person_id=BUYER)
    assert (order.status, order.kind, order.funds_flow) == (
        "authorized",
        "legacy",
        "destination_charge",
    )
    assert (order.buyer_id, order.total_minor, order.commission_minor) == (
        buyer.pk,
        SUM,
        SELLER_COMMISSION,
    )
    assert order.buyers_premium_minor == BUYER_COMMISSION
    assert order.stripe_payment_intent_id == intent.id
    assert list(
        order.transitions.order_by("pk").values_list("from_status", "to_status", "reason")
    ) == [
        ("", "pending", "legacy not_started"),
        ("pending", "pending", "legacy initiated"),
        ("pending", "authorized", "legacy preauthorized"),
    ]
    # The buyer's Stripe customer is the one Gavel will charge and save cards on.
    assert BuyerCustomer.objects.get(user=buyer).stripe_customer_id == customer.id
    line = order.lines.get()
    assert (line.seller.legacy_person_id, line.seller_account_id) == (SELLER, account.id)
    assert account_balance(code="platform:stripe_balance", currency="USD") == 0  # nothing posted

    # The cutover hands the authorization to Gavel; a second call finds nothing left to do.
    out = StringIO()
    call_command("legacy_adopt_in_flight", stdout=out)
    assert out.getvalue() == "adopted 1, refused 0, retry later 0\n"
    assert orders_in_flight_adopt().adopted == []
    assert PaymentAttempt.objects.get().status == "requires_capture"

    order = order_capture(order_id=order.pk)
    assert (order.status, order.captured_minor) == ("captured", SUM)
    assert_books_clean()

    order = order_receipt_confirm(order_id=order.pk, user=buyer)
    assert order.receipt_confirmed_at is not None
    transfer = SellerTransfer.objects.get()
    assert (transfer.kind, transfer.status, transfer.destination_account_id) == (
        "destination",
        "succeeded",
        account.id,
    )
    net = UNIT_PRICE - SELLER_COMMISSION
    # A destination charge moves the whole amount; the application fee comes back to the platform.
    assert (transfer.amount_minor, order.lines.get().transferred_minor) == (SUM, net)
    assert account_balance(code=f"seller_payable:{account.id}", currency="USD") == -net

    # The seller's account is read from Stripe (what the import's refresh task does), then paid out.
    connected_account_refresh(
        account_pk=ConnectedAccount.objects.get(stripe_account_id=account.id).pk
    )
    sandbox.advance(7 * 86_400)  # the destination payment becomes available
    assert payout_run().payouts_created == 1
    assert list(Payout.objects.values_list("account_id", "amount_minor")) == [(account.id, net)]
    assert account_balance(code=f"seller_payable:{account.id}", currency="USD") == 0
    assert_books_clean()


def test_a_buyer_customer_gavel_gives_another_user_is_reported(sandbox: Any) -> None:
    from gavel.legacy.models import LegacyAnomaly
    from gavel.payments.tests.factories import user_make

    source = generated("postgres", f"customer_conflict_{os.getpid()}", payments=0)
    client = sandbox.client()
    account = client.v1.accounts.create(params={"country": "US"})
    customer = client.v1.customers.create(params={"email": "someone@example.com"})
    intent = client.v1.payment_intents.create(
        params={"amount": SUM, "currency": "usd", "customer": customer.id}
    )
    _rows_write(source, intent_id=intent.id, account_id=account.id, customer=customer.id)
    BuyerCustomer.objects.create(user=user_make(), stripe_customer_id=customer.id)

    legacy_import(database=source.database, options=ImportOptions(is_resumable=False))

    anomaly = LegacyAnomaly.objects.get(kind="customer_conflict")
    assert (anomaly.legacy_table, anomaly.legacy_id, anomaly.is_blocking) == (
        "stripe_accounts",
        "900002",
        False,
    )
    assert not BuyerCustomer.objects.filter(user__legacy_person_id=BUYER).exists()
