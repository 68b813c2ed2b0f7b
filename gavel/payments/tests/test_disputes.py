"""Disputes that are inquiries (``warning_*``): Stripe withdraws nothing until the inquiry
escalates, and ``warning_closed`` ends it in the platform's favour."""

from __future__ import annotations

from typing import Any

import pytest

from gavel.ledger.selectors import account_balance
from gavel.payments.models import Dispute, Order, SellerTransfer, TransferReversal
from gavel.payments.services.charging import order_charge
from gavel.payments.services.disputes import disputes_open_refresh
from gavel.payments.services.janitor import janitor_run
from gavel.payments.services.orders import order_for_sale
from gavel.payments.services.transfers import order_receipt_confirm
from gavel.payments.tests.factories import card_save, events_deliver, sale_make, user_make
from gavel.payments.tests.helpers import assert_books_clean
from gavel.users.models import User


@pytest.fixture(autouse=True)
def _janitor_now(settings: Any) -> None:
    settings.PAYMENTS_JANITOR_MIN_AGE_SECONDS = 0


def payable(account_id: str) -> int:
    return -account_balance(code=f"seller_payable:{account_id}", currency="USD")


def _inquired_order_transferred(sandbox: Any, seller_pair: list[tuple[User, str]]) -> Order:
    """A charge the bank asks about (an inquiry), whose webhook arrives after the transfer."""
    (seller, _), _ = seller_pair
    buyer = user_make()
    card_save(sandbox, buyer, "pm_card_createDisputeInquiry")
    order = order_charge(order_id=order_for_sale(sale_id=sale_make(seller, buyer, 10_000).pk).pk)
    order_receipt_confirm(order_id=order.pk, user=buyer)
    assert SellerTransfer.objects.get().status == SellerTransfer.Status.SUCCEEDED
    return order


def test_inquiry_withdraws_nothing_and_warning_closed_unfreezes_the_order(
    sandbox: Any, seller_pair: list[tuple[User, str]]
) -> None:
    (_, acct), _ = seller_pair
    order = _inquired_order_transferred(sandbox, seller_pair)
    events_deliver(sandbox, "charge.dispute.created")
    order.refresh_from_db()
    assert order.status == Order.Status.DISPUTED  # frozen while the bank asks
    dispute = Dispute.objects.get()
    assert (dispute.stripe_status, dispute.outcome) == ("warning_needs_response", "open")
    janitor_run()
    # No money moved at Stripe: nothing withdrawn, no seller reversed.
    assert TransferReversal.objects.count() == 0
    assert payable(acct) == 9_000
    assert account_balance(code="disputes:pending", currency="USD") == 0
    assert_books_clean()

    sandbox.close_dispute(dispute.stripe_dispute_id, "won")  # the inquiry closes
    events_deliver(sandbox, "charge.dispute.closed")
    order.refresh_from_db()
    dispute.refresh_from_db()
    assert order.status == Order.Status.CAPTURED
    assert order.disputed_minor == 0
    assert (dispute.stripe_status, dispute.outcome) == ("warning_closed", "won")
    assert list(order.transitions.order_by("pk").values_list("operation", "to_status"))[-2:] == [
        ("dispute_open", "disputed"),
        ("dispute_win", "captured"),
    ]
    assert SellerTransfer.objects.filter(kind=SellerTransfer.Kind.REINSTATEMENT).count() == 0
    assert account_balance(code="expense:dispute_fees", currency="USD") == 0
    assert payable(acct) == 9_000
    assert disputes_open_refresh() == 0
    assert_books_clean()


def test_inquiry_closed_seen_only_by_the_janitor(
    sandbox: Any, seller_pair: list[tuple[User, str]]
) -> None:
    order = _inquired_order_transferred(sandbox, seller_pair)
    events_deliver(sandbox, "charge.dispute.created")
    sandbox.close_dispute(Dispute.objects.get().stripe_dispute_id, "won")
    assert janitor_run()["disputes"] == 1  # the closed webhook was lost
    order.refresh_from_db()
    assert order.status == Order.Status.CAPTURED
    assert Dispute.objects.get().outcome == "won"
    assert disputes_open_refresh() == 0
    assert_books_clean()


def test_inquiry_escalated_and_lost_sellers_bear_it_once_money_is_withdrawn(
    sandbox: Any, seller_pair: list[tuple[User, str]]
) -> None:
    (_, acct), _ = seller_pair
    order = _inquired_order_transferred(sandbox, seller_pair)
    events_deliver(sandbox, "charge.dispute.created")
    assert TransferReversal.objects.count() == 0
    # The bank escalates to a chargeback and wins it: Stripe withdraws the funds now.
    sandbox.close_dispute(Dispute.objects.get().stripe_dispute_id, "lost")
    events_deliver(sandbox, "charge.dispute.funds_withdrawn")
    janitor_run()
    assert list(TransferReversal.objects.values_list("amount_minor", "status")) == [
        (9_000, "succeeded")
    ]
    events_deliver(sandbox, "charge.dispute.closed")
    order.refresh_from_db()
    assert order.status == Order.Status.DISPUTE_LOST
    assert payable(acct) == 0
    assert account_balance(code="expense:dispute_losses", currency="USD") == 10_500 - 9_000
    assert account_balance(code="expense:dispute_fees", currency="USD") == 1_500
    assert account_balance(code="disputes:pending", currency="USD") == 0
    assert_books_clean()


def test_inquiry_escalated_and_lost_seen_only_by_the_janitor(
    sandbox: Any, seller_pair: list[tuple[User, str]]
) -> None:
    order = _inquired_order_transferred(sandbox, seller_pair)
    events_deliver(sandbox, "charge.dispute.created")
    sandbox.close_dispute(Dispute.objects.get().stripe_dispute_id, "lost")
    assert janitor_run()["disputes"] == 1  # no funds_withdrawn nor closed webhook arrived
    janitor_run()  # executes the reversal planned when the withdrawal was booked
    order.refresh_from_db()
    assert order.status == Order.Status.DISPUTE_LOST
    assert list(TransferReversal.objects.values_list("amount_minor", "status")) == [
        (9_000, "succeeded")
    ]
    assert account_balance(code="expense:dispute_losses", currency="USD") == 10_500 - 9_000
    assert account_balance(code="disputes:pending", currency="USD") == 0
    assert_books_clean()
