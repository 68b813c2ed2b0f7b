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


def _refund_failed_after_booking(
    sandbox: Any, seller_pair: list[tuple[User, str]], *, transferred: bool
) -> tuple[Order, Refund]:
    """A 500 refund booked (after the seller's transfer, which it reverses, or before it),
    then failed by Stripe 60 s later: refund.failed delivered."""
    from gavel.payments.tests.factories import events_deliver

    order = _refund_fail_order(sandbox, seller_pair)
    if transferred:
        order_receipt_confirm(order_id=order.pk, user=order.buyer)
    refund = refund_issue(order_id=order.pk, actor=user_make(), amount_minor=500, reason="x")
    assert refund.status == Refund.Status.SUCCEEDED
    assert Order.objects.get(pk=order.pk).status == Order.Status.PARTIALLY_REFUNDED
    sandbox.advance(61)
    assert events_deliver(sandbox, "refund.failed") == 1
    order.refresh_from_db()
    refund.refresh_from_db()
    return order, refund


def _refunded_totals(order: Order) -> list[tuple[int, int, int, int]]:
    return list(
        order.lines.order_by("pk").values_list(
            "refunded_seller_minor",
            "refunded_commission_minor",
            "refunded_premium_minor",
            "refunded_absorbed_minor",
        )
    )


def test_refund_failed_after_it_was_booked_is_unwound_and_the_seller_made_whole(
    sandbox: Any, seller_pair: list[tuple[User, str]]
) -> None:
    from gavel.ledger.models import JournalEntry
    from gavel.payments.models import OrderTransition, TransferReversal
    from gavel.payments.services.transfers import line_releasable_minor, seller_owed_minor

    order, refund = _refund_failed_after_booking(sandbox, seller_pair, transferred=True)
    assert (refund.status, refund.error_code, refund.failure_reason) == (
        Refund.Status.FAILED,
        "failed",
        "expired_or_canceled_card",
    )
    assert list(refund.transitions.order_by("pk").values_list("from_status", "to_status")) == [
        ("creating", "succeeded"),
        ("succeeded", "failed"),
    ]
    assert (order.status, order.refunded_minor) == (Order.Status.CAPTURED, 0)
    assert _refunded_totals(order) == [(0, 0, 0, 0)]
    assert list(
        OrderTransition.objects.filter(order=order)
        .order_by("pk")
        .values_list("from_status", "to_status", "operation")
    )[-1] == ("partially_refunded", "captured", "refund_fail")
    # The seller's transfer was reversed for the refund: that share is transferred back.
    reversal = TransferReversal.objects.get(refund=refund)
    assert reversal.status == "succeeded"
    line = order.lines.get()
    assert list(
        SellerTransfer.objects.order_by("pk").values_list("kind", "status", "amount_minor")
    ) == [
        ("sale", "succeeded", line.seller_net_minor),
        ("refund_failed", "succeeded", reversal.amount_minor),
    ]
    assert line_releasable_minor(line) == 0
    assert seller_owed_minor(account_id=line.seller_account_id, currency="USD") == (
        line.seller_net_minor
    )
    assert JournalEntry.objects.filter(kind="refund_failed_after_booking").count() == 1
    assert_books_clean()  # reconciliation: 0 differences, the refund_failure linked


def test_refund_failed_before_the_transfer_gives_the_seller_the_whole_net(
    sandbox: Any, seller_pair: list[tuple[User, str]]
) -> None:
    order, refund = _refund_failed_after_booking(sandbox, seller_pair, transferred=False)
    assert (refund.status, order.status, order.refunded_minor) == (
        Refund.Status.FAILED,
        Order.Status.CAPTURED,
        0,
    )
    assert _refunded_totals(order) == [(0, 0, 0, 0)]
    assert not SellerTransfer.objects.exists()
    order_receipt_confirm(order_id=order.pk, user=order.buyer)
    assert list(SellerTransfer.objects.values_list("kind", "status", "amount_minor")) == [
        ("sale", "succeeded", order.lines.get().seller_net_minor)
    ]
    assert_books_clean()


def test_refund_failed_replayed_changes_nothing_the_second_time(
    sandbox: Any, seller_pair: list[tuple[User, str]]
) -> None:
    from gavel.ledger.models import BalanceTransactionLink, JournalEntry
    from gavel.payments.models import OrderTransition, RefundTransition
    from gavel.payments.tests.factories import events_deliver

    order, refund = _refund_failed_after_booking(sandbox, seller_pair, transferred=True)

    def state() -> tuple[object, ...]:
        order.refresh_from_db()
        refund.refresh_from_db()
        return (
            JournalEntry.objects.count(),
            BalanceTransactionLink.objects.count(),
            SellerTransfer.objects.count(),
            OrderTransition.objects.count(),
            RefundTransition.objects.count(),
            (order.status, order.refunded_minor),
            _refunded_totals(order),
            (refund.status, refund.failure_reason),
        )

    before = state()
    # The same event again, and Stripe's other event of the same failure.
    assert events_deliver(sandbox, "refund.failed", "charge.refund.updated") == 2
    assert state() == before
    assert_books_clean()


def test_refund_failed_while_disputed_books_the_money_and_keeps_the_status(
    sandbox: Any, seller_pair: list[tuple[User, str]]
) -> None:
    from gavel.payments.tests.factories import events_deliver

    order = _refund_fail_order(sandbox, seller_pair)
    refund = refund_issue(order_id=order.pk, actor=user_make(), amount_minor=500, reason="x")
    dispute = sandbox.open_dispute(order.stripe_charge_id, amount=1_000)
    events_deliver(sandbox, "charge.dispute.created")
    order.refresh_from_db()
    history_before = list(order.transitions.values_list("pk", flat=True))
    sandbox.advance(61)
    events_deliver(sandbox, "refund.failed")
    order.refresh_from_db()
    refund.refresh_from_db()
    assert (refund.status, order.status, order.refunded_minor) == (
        Refund.Status.FAILED,
        Order.Status.DISPUTED,
        0,
    )
    assert list(order.transitions.values_list("pk", flat=True)) == history_before
    assert _refunded_totals(order) == [(0, 0, 0, 0)]
    assert_books_clean()

    sandbox.close_dispute(dispute["id"], "won")
    events_deliver(sandbox, "charge.dispute.funds_reinstated", "charge.dispute.closed")
    order.refresh_from_db()
    assert order.status == Order.Status.CAPTURED
    order_receipt_confirm(order_id=order.pk, user=order.buyer)
    assert list(SellerTransfer.objects.values_list("kind", "amount_minor")) == [
        ("sale", order.lines.get().seller_net_minor)
    ]
    assert_books_clean()


def test_destination_refund_failed_leaves_the_sellers_share_owed(
    sandbox: Any, settings: Any, db: None
) -> None:
    """Stripe keeps the transfer reversed and the application fee refunded when a destination
    charge's refund fails: the books take the money back and the seller's share stays owed in
    their payable (recorded as waiting, for staff), not transferred again."""
    from gavel.ledger.selectors import account_balance
    from gavel.payments.models import PaymentEvent
    from gavel.payments.tests.factories import events_deliver

    settings.PAYMENTS_BUY_NOW_FUNDS_FLOW = "destination_charge"
    seller, acct = seller_make(sandbox)
    buyer = user_make()
    card_save(sandbox, buyer, "pm_card_refundFail")
    sale = sale_make(seller, buyer, 10_000, kind=Sale.Kind.BUY_NOW)
    order = order_charge(order_id=order_for_sale(sale_id=sale.pk).pk)
    assert order.funds_flow == "destination_charge"
    refund_issue(order_id=order.pk, actor=user_make(), amount_minor=5_250, reason="half")
    assert account_balance(code=f"seller_payable:{acct}", currency="USD") == -4_500
    sandbox.advance(61)
    events_deliver(sandbox, "refund.failed")
    order.refresh_from_db()
    assert (order.status, order.refunded_minor) == (Order.Status.CAPTURED, 0)
    assert _refunded_totals(order) == [(0, 0, 0, 0)]
    assert account_balance(code=f"seller_payable:{acct}", currency="USD") == -9_000
    assert account_balance(code=f"connected_balance:{acct}", currency="USD") == 4_500
    assert list(
        PaymentEvent.objects.filter(type="transfer_waiting").values_list("amount_minor", flat=True)
    ) == [4_500]
    assert not SellerTransfer.objects.exclude(kind="destination").exists()
    assert_books_clean()
