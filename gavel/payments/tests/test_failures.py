"""Refusals from Stripe that are final: nothing is posted, the state says why, and the next
step (a new transfer, another card, a normal charge) still works."""

from __future__ import annotations

from typing import Any

from gavel.auctions.models import Auction, Sale
from gavel.payments.models import Hold, Order, PaymentAttempt, Refund, SellerTransfer
from gavel.payments.services.charging import order_charge
from gavel.payments.services.orders import order_for_sale
from gavel.payments.services.refunds import refund_issue
from gavel.payments.services.transfers import order_receipt_confirm, orders_release_due
from gavel.payments.tests.factories import (
    auction_make,
    card_save,
    sale_make,
    seller_make,
    user_make,
)
from gavel.payments.tests.helpers import assert_books_clean
from gavel.users.models import User


def test_charge_refused_for_good_fails_the_order(
    sandbox: Any, card_buyer: User, seller_pair: list[tuple[User, str]]
) -> None:
    (seller, _), _ = seller_pair
    sale = sale_make(seller, card_buyer, 5_000)
    sandbox.fail_requests(400, method="POST", path="/v1/payment_intents")
    order = order_charge(order_id=order_for_sale(sale_id=sale.pk).pk)
    assert order.status == Order.Status.FAILED
    assert PaymentAttempt.objects.get().status == "failed"
    assert Sale.objects.get().status == Sale.Status.PAYMENT_FAILED
    assert_books_clean()


def test_transfer_refused_then_released_again(
    sandbox: Any, card_buyer: User, seller_pair: list[tuple[User, str]]
) -> None:
    (seller, _), _ = seller_pair
    order = order_charge(
        order_id=order_for_sale(sale_id=sale_make(seller, card_buyer, 5_000).pk).pk
    )
    sandbox.fail_requests(400, method="POST", path="/v1/transfers")
    order_receipt_confirm(order_id=order.pk, user=card_buyer)
    assert SellerTransfer.objects.get().status == "failed"
    assert orders_release_due() == 1
    assert list(SellerTransfer.objects.order_by("pk").values_list("status", flat=True)) == [
        "failed",
        "succeeded",
    ]
    assert_books_clean()


def test_refund_refused_for_good_posts_nothing(
    sandbox: Any, card_buyer: User, seller_pair: list[tuple[User, str]]
) -> None:
    (seller, _), _ = seller_pair
    order = order_charge(
        order_id=order_for_sale(sale_id=sale_make(seller, card_buyer, 5_000).pk).pk
    )
    sandbox.fail_requests(400, method="POST", path="/v1/refunds")
    refund = refund_issue(order_id=order.pk, actor=user_make(), amount_minor=500, reason="x")
    assert refund.status == Refund.Status.FAILED
    order.refresh_from_db()
    assert (order.status, order.refunded_minor) == (Order.Status.CAPTURED, 0)
    # Nothing is in flight any more: the next refund goes through.
    refund_issue(order_id=order.pk, actor=user_make(), amount_minor=500, reason="y")
    order.refresh_from_db()
    assert order.refunded_minor == 500
    assert_books_clean()


def test_expired_hold_falls_back_to_a_normal_charge(sandbox: Any, db: None) -> None:
    from gavel.payments.services.holds import hold_place

    seller, _ = seller_make(sandbox)
    bidder = user_make()
    card_save(sandbox, bidder, "pm_card_bypassPending")
    auction = auction_make(
        seller, hold_policy=Auction.HoldPolicy.AUTHORIZATION, status=Auction.Status.ACTIVE
    )
    hold = hold_place(auction_id=auction.pk, user=bidder, amount_minor=20_000)
    sandbox.advance(8 * 86_400)  # Stripe cancels the authorization; no webhook reaches us
    sale = sale_make(seller, bidder, 10_000, auction=auction)
    order = order_charge(order_id=order_for_sale(sale_id=sale.pk).pk)
    assert order.status == Order.Status.CAPTURED
    assert Hold.objects.get(pk=hold.pk).status == "expired"
    assert PaymentAttempt.objects.filter(purpose="order", status="succeeded").count() == 1
    assert_books_clean()
