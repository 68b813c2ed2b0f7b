"""An in-flight legacy payment carried on by Gavel: the portal's state made for real in the
Stripe sandbox, its rows written into a generated portal, imported, then captured, confirmed
and paid out by Gavel's payment services."""

from __future__ import annotations

import os
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from gavel.auctions.models import BuyerCustomer
from gavel.auctions.selectors import bidder_has_verified_payment_method
from gavel.auctions.services.customers import REFRESH_BATCH_TASK as CUSTOMERS_REFRESH_TASK
from gavel.auctions.tasks import buyer_customers_refresh
from gavel.common.models import OutboxMessage
from gavel.connect.models import ConnectedAccount
from gavel.connect.services import connected_account_refresh
from gavel.ledger.selectors import account_balance
from gavel.legacy.importer import ImportOptions, legacy_import
from gavel.legacy.orders import orders_in_flight_adopt
from gavel.legacy.tests.conftest import generated
from gavel.legacy.tests.portal_rows import (
    BUYER,
    BUYER_COMMISSION,
    PREAUTHORIZED,
    SELLER,
    SELLER_COMMISSION,
    SUM,
    UNIT_PRICE,
    PortalPayment,
    portal_transaction_write,
)
from gavel.payments.models import Order, PaymentAttempt, SellerTransfer
from gavel.payments.services.charging import order_capture
from gavel.payments.services.transfers import order_receipt_confirm
from gavel.payments.tests.helpers import assert_books_clean
from gavel.payouts.models import Payout
from gavel.payouts.services import payout_run
from gavel.users.models import User

pytestmark = pytest.mark.django_db


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
    # The portal's buyer saved a card for off-session use: Gavel adopts it, so the buyer can
    # bid without setting one up again.
    saved = client.v1.setup_intents.create(
        params={
            "customer": customer.id,
            "usage": "off_session",
            "payment_method": "pm_card_mastercard",
            "confirm": True,
            "return_url": "https://portal.invalid/return",
        }
    )
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
    transaction_id = portal_transaction_write(
        source.database,
        payment=PortalPayment(PREAUTHORIZED, intent.id),
        account_id=account.id,
        customer=customer.id,
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
    # Unsynced until the import's refresh task (one per batch, through the outbox) reads it.
    assert BuyerCustomer.objects.get(user=buyer).status == "unsynced"
    message = OutboxMessage.objects.get(task_name=CUSTOMERS_REFRESH_TASK)
    assert buyer_customers_refresh(**message.kwargs) == {"refreshed": 1, "failed": 0}
    assert BuyerCustomer.objects.get(user=buyer).status == "active"
    assert bidder_has_verified_payment_method(user=buyer)
    cards = buyer.verified_payment_methods.values_list("stripe_payment_method_id", "last4")
    assert list(cards) == [(saved.payment_method, "4444")]
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
    portal_transaction_write(
        source.database,
        payment=PortalPayment(PREAUTHORIZED, intent.id),
        account_id=account.id,
        customer=customer.id,
    )
    BuyerCustomer.objects.create(user=user_make(), stripe_customer_id=customer.id)

    legacy_import(database=source.database, options=ImportOptions(is_resumable=False))

    anomaly = LegacyAnomaly.objects.get(kind="customer_conflict")
    assert (anomaly.legacy_table, anomaly.legacy_id, anomaly.is_blocking) == (
        "stripe_accounts",
        "900002",
        False,
    )
    assert not BuyerCustomer.objects.filter(user__legacy_person_id=BUYER).exists()
