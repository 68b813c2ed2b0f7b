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


def _refund_fail_order(sandbox: Any, seller_pair: list[tuple[User, str]]) -> Order:
    """An order paid with a card whose refunds succeed, then fail 60 s later (money back)."""
    (seller, _), _ = seller_pair
    buyer = user_make()
    card_save(sandbox, buyer, "pm_card_refundFail")
    return order_charge(order_id=order_for_sale(sale_id=sale_make(seller, buyer, 5_000).pk).pk)


def test_refund_failed_at_stripe_is_never_booked_as_succeeded_by_the_janitor(
    sandbox: Any, seller_pair: list[tuple[User, str]], settings: Any
) -> None:
    from gavel.ledger.models import JournalEntry
    from gavel.payments.services.janitor import janitor_run

    settings.PAYMENTS_JANITOR_MIN_AGE_SECONDS = 0
    order = _refund_fail_order(sandbox, seller_pair)
    sandbox.timeout_after_apply(method="POST", path="/v1/refunds")
    refund = refund_issue(order_id=order.pk, actor=user_make(), amount_minor=500, reason="x")
    assert refund.status == Refund.Status.UNKNOWN
    sandbox.advance(61)  # the refund fails at Stripe before the janitor re-reads it
    entries_before = JournalEntry.objects.count()
    assert janitor_run()["refunds"] == 1
    refund.refresh_from_db()
    assert (refund.status, refund.error_code) == (Refund.Status.FAILED, "failed")
    order.refresh_from_db()
    assert (order.status, order.refunded_minor) == (Order.Status.CAPTURED, 0)
    assert list(order.lines.values_list("refunded_seller_minor", "refunded_premium_minor")) == [
        (0, 0)
    ]
    # Only the two balance transactions that cancel out (refund, refund_failure) are linked.
    assert JournalEntry.objects.count() == entries_before + 1
    assert JournalEntry.objects.order_by("pk").last().kind == "refund_failed"  # type: ignore[union-attr]
    assert_books_clean()
    assert janitor_run()["refunds"] == 0  # nothing left in flight


def test_refund_failed_webhook_fails_an_in_flight_refund(
    sandbox: Any, seller_pair: list[tuple[User, str]]
) -> None:
    from gavel.payments.tests.factories import events_deliver

    order = _refund_fail_order(sandbox, seller_pair)
    sandbox.timeout_after_apply(method="POST", path="/v1/refunds")
    refund = refund_issue(order_id=order.pk, actor=user_make(), amount_minor=500, reason="x")
    sandbox.advance(61)
    events_deliver(sandbox, "refund.failed")
    refund.refresh_from_db()
    assert refund.status == Refund.Status.FAILED
    order.refresh_from_db()
    assert (order.status, order.refunded_minor) == (Order.Status.CAPTURED, 0)
    assert_books_clean()


def test_refund_failed_after_it_was_booked_is_recorded_not_applied(
    sandbox: Any, seller_pair: list[tuple[User, str]]
) -> None:
    """Unwinding a booked refund is not done: the failure is recorded and reconciliation
    reports the refund_failure transaction until staff settle it."""
    from gavel.ledger.reconciliation import reconciliation_run
    from gavel.payments.models import PaymentEvent
    from gavel.payments.tests.factories import events_deliver

    order = _refund_fail_order(sandbox, seller_pair)
    refund = refund_issue(order_id=order.pk, actor=user_make(), amount_minor=500, reason="x")
    assert refund.status == Refund.Status.SUCCEEDED
    sandbox.advance(61)
    events_deliver(sandbox, "refund.failed")
    refund.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED
    assert list(
        PaymentEvent.objects.filter(type="refund_failed_after_apply").values_list(
            "applied", "amount_minor", "stripe_object_id"
        )
    ) == [(False, 500, refund.stripe_refund_id)]
    assert [
        (d.kind, d.stripe_minor - d.ledger_minor) for d in reconciliation_run().differences
    ] == [
        ("missing_in_ledger", 500),
        ("balance_mismatch", 500),
    ]
