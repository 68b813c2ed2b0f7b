"""Faults from the sandbox during charge, transfer, refund, reversal and payout: timeouts
after the request was applied, 500s and 429s. No double charge, no double transfer, and the
janitor settles every unknown outcome."""

from __future__ import annotations

from typing import Any

import pytest

from gavel.payments.models import Order, PaymentAttempt, Refund, SellerTransfer, TransferReversal
from gavel.payments.services.charging import order_charge
from gavel.payments.services.janitor import janitor_run
from gavel.payments.services.orders import order_for_sale
from gavel.payments.services.refunds import refund_issue
from gavel.payments.services.transfers import order_receipt_confirm
from gavel.payments.tests.factories import sale_make, user_make
from gavel.payments.tests.helpers import assert_books_clean
from gavel.payouts.models import Payout
from gavel.payouts.services import payout_run, payouts_janitor_run
from gavel.users.models import User


@pytest.fixture(autouse=True)
def _janitor_now(settings: Any) -> None:
    settings.PAYMENTS_JANITOR_MIN_AGE_SECONDS = 0


def _order(card_buyer: User, seller_pair: list[tuple[User, str]]) -> Order:
    (seller_a, _), (seller_b, _) = seller_pair
    sale = sale_make(seller_a, card_buyer, 10_000)
    sale_make(seller_b, card_buyer, 4_000)
    return order_for_sale(sale_id=sale.pk)


def _stripe_count(sandbox: Any, kind: str) -> int:
    return len(sandbox.objects_of(kind, ...))


@pytest.mark.parametrize(
    ("fault", "expected_status"),
    [("timeout", "unknown"), ("500", "unknown"), ("429", "creating")],
)
def test_charge_fault_then_janitor_settles_without_double_charge(
    sandbox: Any,
    card_buyer: User,
    seller_pair: list[tuple[User, str]],
    fault: str,
    expected_status: str,
) -> None:
    order = _order(card_buyer, seller_pair)
    if fault == "timeout":
        sandbox.timeout_after_apply(method="POST", path="/v1/payment_intents")
    else:
        sandbox.fail_requests(int(fault), method="POST", path="/v1/payment_intents")
    order = order_charge(order_id=order.pk)
    attempt = PaymentAttempt.objects.get()
    assert attempt.status == expected_status
    assert order.status in (Order.Status.UNKNOWN, Order.Status.PENDING)
    if fault == "500":
        # A second handoff of the same order re-sends the same key: still one PaymentIntent.
        order_charge(order_id=order.pk)
    assert janitor_run()["attempts"] == (0 if fault == "500" else 1)
    order.refresh_from_db()
    assert order.status == Order.Status.CAPTURED
    assert PaymentAttempt.objects.count() == 1
    assert _stripe_count(sandbox, "payment_intent") == 1
    assert len([c for c in sandbox.objects_of("charge", None) if c["captured"]]) == 1
    assert_books_clean()


@pytest.mark.parametrize("fault", ["timeout", "500", "429"])
def test_transfer_fault_then_janitor_settles_without_double_transfer(
    sandbox: Any, card_buyer: User, seller_pair: list[tuple[User, str]], fault: str
) -> None:
    order = order_charge(order_id=_order(card_buyer, seller_pair).pk)
    if fault == "timeout":
        sandbox.timeout_after_apply(method="POST", path="/v1/transfers")
    else:
        sandbox.fail_requests(int(fault), method="POST", path="/v1/transfers")
    order_receipt_confirm(order_id=order.pk, user=card_buyer)
    assert SellerTransfer.objects.exclude(status="succeeded").count() == 1
    janitor_run()
    assert set(SellerTransfer.objects.values_list("status", flat=True)) == {"succeeded"}
    assert _stripe_count(sandbox, "transfer") == 2
    assert_books_clean()
    order_receipt_confirm(order_id=order.pk, user=card_buyer)
    janitor_run()
    assert _stripe_count(sandbox, "transfer") == 2


@pytest.mark.parametrize("fault", ["timeout", "500"])
def test_refund_and_reversal_faults_then_janitor_settles(
    sandbox: Any, card_buyer: User, seller_pair: list[tuple[User, str]], fault: str
) -> None:
    order = order_charge(order_id=_order(card_buyer, seller_pair).pk)
    order_receipt_confirm(order_id=order.pk, user=card_buyer)
    if fault == "timeout":
        sandbox.timeout_after_apply(method="POST", path="/v1/refunds")
        sandbox.timeout_after_apply(method="POST", path="/v1/transfers/")
    else:
        sandbox.fail_requests(500, method="POST", path="/v1/refunds")
    refund = refund_issue(order_id=order.pk, actor=user_make(), amount_minor=2_100, reason="x")
    assert refund.status == Refund.Status.UNKNOWN
    janitor_run()
    janitor_run()
    assert Refund.objects.get().status == Refund.Status.SUCCEEDED
    assert len(sandbox.objects_of("refund", None)) == 1
    assert set(TransferReversal.objects.values_list("status", flat=True)) == {"succeeded"}
    assert _stripe_count(sandbox, "transfer_reversal") == TransferReversal.objects.count()
    assert_books_clean()


def test_payout_timeout_then_janitor_settles(
    sandbox: Any, card_buyer: User, seller_pair: list[tuple[User, str]]
) -> None:
    order = order_charge(order_id=_order(card_buyer, seller_pair).pk)
    order_receipt_confirm(order_id=order.pk, user=card_buyer)
    sandbox.timeout_after_apply(method="POST", path="/v1/payouts", times=2)
    payout_run()
    assert set(Payout.objects.values_list("status", flat=True)) == {"unknown"}
    assert payout_run().payouts_created == 0  # an open payout blocks another
    assert payouts_janitor_run() == 2
    assert set(Payout.objects.values_list("status", flat=True)) == {"pending"}
    assert _stripe_count(sandbox, "payout") == 2
    assert_books_clean()


def test_payout_janitor_goes_on_past_a_payout_stripe_cannot_answer_for_yet(
    sandbox: Any, card_buyer: User, seller_pair: list[tuple[User, str]]
) -> None:
    order = order_charge(order_id=_order(card_buyer, seller_pair).pk)
    order_receipt_confirm(order_id=order.pk, user=card_buyer)
    payout_run()
    first, second = Payout.objects.order_by("pk")
    assert first.stripe_payout_id
    sandbox.fail_payout(first.stripe_payout_id)  # its webhook is not delivered here
    sandbox.advance(3 * 86_400)  # the other is paid
    # The failed payout's returned-funds balance transaction cannot be read on this pass.
    sandbox.fail_requests(500, method="GET", path="/v1/balance_transactions")

    assert payouts_janitor_run() == 1  # before, the error ended the pass: none was settled

    statuses = dict(Payout.objects.values_list("pk", "status"))
    assert statuses == {first.pk: "pending", second.pk: "paid"}
    assert payouts_janitor_run() == 1
    assert dict(Payout.objects.values_list("pk", "status")) == {
        first.pk: "failed",
        second.pk: "paid",
    }
    assert_books_clean()


def test_processing_payment_is_settled_by_the_janitor(
    sandbox: Any, card_buyer: User, seller_pair: list[tuple[User, str]]
) -> None:
    sandbox.card_processing_seconds = 60
    order = order_charge(order_id=_order(card_buyer, seller_pair).pk)
    assert (order.status, PaymentAttempt.objects.get().status) == ("unknown", "processing")
    assert janitor_run()["attempts"] == 1  # Stripe still processing: nothing changes
    order.refresh_from_db()
    assert order.status == Order.Status.UNKNOWN
    sandbox.advance(120)
    janitor_run()
    order.refresh_from_db()
    assert order.status == Order.Status.CAPTURED
    assert_books_clean()


def test_hold_capture_timeout_settled_by_the_janitor(sandbox: Any, db: None) -> None:
    from gavel.auctions.models import Auction
    from gavel.payments.models import Hold
    from gavel.payments.services.holds import hold_place
    from gavel.payments.tests.factories import auction_make, card_save, seller_make

    seller, _ = seller_make(sandbox)
    bidder = user_make()
    card_save(sandbox, bidder, "pm_card_bypassPending")
    auction = auction_make(
        seller, hold_policy=Auction.HoldPolicy.AUTHORIZATION, status=Auction.Status.ACTIVE
    )
    hold = hold_place(auction_id=auction.pk, user=bidder, amount_minor=20_000)
    Auction.objects.filter(pk=auction.pk).update(status=Auction.Status.SOLD)
    sale = sale_make(seller, bidder, 10_000, auction=auction)
    sandbox.timeout_after_apply(method="POST", path="/v1/payment_intents/")
    order = order_charge(order_id=order_for_sale(sale_id=sale.pk).pk)
    assert order.status == Order.Status.UNKNOWN
    assert janitor_run()["captures"] == 1
    order.refresh_from_db()
    assert order.status == Order.Status.CAPTURED
    assert Hold.objects.get(pk=hold.pk).status == "captured"
    assert_books_clean()


def test_hold_capture_not_applied_is_re_sent_by_the_janitor(sandbox: Any, db: None) -> None:
    from gavel.auctions.models import Auction
    from gavel.payments.services.holds import hold_place
    from gavel.payments.tests.factories import auction_make, card_save, seller_make

    seller, _ = seller_make(sandbox)
    bidder = user_make()
    card_save(sandbox, bidder, "pm_card_bypassPending")
    auction = auction_make(
        seller, hold_policy=Auction.HoldPolicy.AUTHORIZATION, status=Auction.Status.ACTIVE
    )
    hold_place(auction_id=auction.pk, user=bidder, amount_minor=20_000)
    sale = sale_make(seller, bidder, 10_000, auction=auction)
    sandbox.fail_requests(500, method="POST", path="/v1/payment_intents/")
    order = order_charge(order_id=order_for_sale(sale_id=sale.pk).pk)
    assert order.status == Order.Status.UNKNOWN
    janitor_run()
    order.refresh_from_db()
    assert order.status == Order.Status.CAPTURED
    assert_books_clean()


def test_janitor_skips_an_order_another_worker_holds(
    sandbox: Any, card_buyer: User, seller_pair: list[tuple[User, str]]
) -> None:
    from gavel.payments.services.janitor import _order_locked_or_skip

    assert _order_locked_or_skip(None) is True
    order = _order(card_buyer, seller_pair)
    assert _order_locked_or_skip(order.pk) is True


@pytest.mark.django_db(transaction=True)
def test_concurrent_handoffs_charge_once(sandbox: Any) -> None:
    """Two workers get the same sale at once (a redelivered message): one PaymentIntent."""
    import threading

    from django.db import connection

    from gavel.payments.tests.factories import card_save, seller_make

    seller, _ = seller_make(sandbox)
    buyer = user_make()
    card_save(sandbox, buyer, "pm_card_bypassPending")
    sale = sale_make(seller, buyer, 7_000)
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def handoff() -> None:
        try:
            barrier.wait()
            order_charge(order_id=order_for_sale(sale_id=sale.pk).pk)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=handoff) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    janitor_run()
    assert errors == []
    assert Order.objects.count() == 1
    assert Order.objects.get().status == Order.Status.CAPTURED
    assert PaymentAttempt.objects.count() == 1
    assert _stripe_count(sandbox, "payment_intent") == 1
    assert_books_clean()


def test_rate_limited_handoff_asks_celery_to_retry(
    sandbox: Any, card_buyer: User, seller_pair: list[tuple[User, str]]
) -> None:
    from gavel.gateway.errors import GatewayRetryableError
    from gavel.payments import tasks

    (seller, _), _ = seller_pair
    sale = sale_make(seller, card_buyer, 2_000)
    sandbox.fail_requests(429, method="POST", path="/v1/payment_intents")
    with pytest.raises(GatewayRetryableError):
        tasks.sale_charge.run(sale_id=sale.pk)
    order_id = tasks.sale_charge.run(sale_id=sale.pk)  # the retry: same attempt, same key
    assert Order.objects.get(pk=order_id).status == Order.Status.CAPTURED
    assert PaymentAttempt.objects.count() == 1
    assert _stripe_count(sandbox, "payment_intent") == 1


def _single_order_refund_lost(sandbox: Any, buyer: User, seller: User, hammer: int) -> Order:
    """A charged single-seller order whose refund Stripe applied but whose answer was lost."""
    order = order_charge(order_id=order_for_sale(sale_id=sale_make(seller, buyer, hammer).pk).pk)
    sandbox.timeout_after_apply(method="POST", path="/v1/refunds")
    refund = refund_issue(order_id=order.pk, actor=user_make(), amount_minor=1_050, reason="x")
    assert refund.status == Refund.Status.UNKNOWN
    return order


def test_refund_settled_after_a_dispute_opened_books_the_money_and_keeps_the_freeze(
    sandbox: Any, card_buyer: User, seller_pair: list[tuple[User, str]]
) -> None:
    from gavel.payments.tests.factories import events_deliver

    (seller, _), _ = seller_pair
    disputed = _single_order_refund_lost(sandbox, card_buyer, seller, 10_000)
    other = _single_order_refund_lost(sandbox, card_buyer, seller, 20_000)
    dispute = sandbox.open_dispute(disputed.stripe_charge_id, amount=10_500 - 1_050)
    events_deliver(sandbox, "charge.dispute.created")
    disputed.refresh_from_db()
    assert disputed.status == Order.Status.DISPUTED
    history_before = list(disputed.transitions.order_by("pk").values_list("to_status", flat=True))

    counts = janitor_run()
    assert counts["refunds"] == 2
    assert set(Refund.objects.values_list("status", flat=True)) == {"succeeded"}
    disputed.refresh_from_db()
    other.refresh_from_db()
    # The disputed order's refund is booked; its status stays frozen, no history row.
    assert (disputed.status, disputed.refunded_minor) == (Order.Status.DISPUTED, 1_050)
    assert (
        list(disputed.transitions.order_by("pk").values_list("to_status", flat=True))
        == history_before
    )
    assert (other.status, other.refunded_minor) == (Order.Status.PARTIALLY_REFUNDED, 1_050)
    assert_books_clean()

    sandbox.close_dispute(dispute["id"], "won")
    events_deliver(sandbox, "charge.dispute.funds_reinstated", "charge.dispute.closed")
    disputed.refresh_from_db()
    assert disputed.status == Order.Status.PARTIALLY_REFUNDED
    assert_books_clean()


def test_janitor_logs_a_failing_item_and_settles_the_others(
    sandbox: Any,
    card_buyer: User,
    seller_pair: list[tuple[User, str]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from gavel.payments.services import janitor as janitor_module

    (seller, _), _ = seller_pair
    broken = _single_order_refund_lost(sandbox, card_buyer, seller, 10_000)
    other = _single_order_refund_lost(sandbox, card_buyer, seller, 20_000)
    broken_refund = Refund.objects.get(order=broken)
    from gavel.payments.services.refunds import refund_succeeded_apply as apply

    def apply_or_fail(*, refund_id: int, stripe_refund: Any) -> Refund:
        if refund_id == broken_refund.pk:
            raise RuntimeError("unexpected")
        return apply(refund_id=refund_id, stripe_refund=stripe_refund)

    monkeypatch.setattr(janitor_module, "refund_succeeded_apply", apply_or_fail)
    with caplog.at_level("ERROR", logger="gavel.payments.services.janitor"):
        counts = janitor_run()
    assert counts["refunds"] == 1
    assert Refund.objects.get(pk=broken_refund.pk).status == Refund.Status.UNKNOWN
    assert Refund.objects.get(order=other).status == Refund.Status.SUCCEEDED
    failures = [r for r in caplog.records if getattr(r, "object_id", None) == broken_refund.pk]
    assert [(r.levelname, getattr(r, "kind", None)) for r in failures] == [("ERROR", "refund")]
    assert failures[0].exc_info is not None


@pytest.mark.django_db(transaction=True)
def test_handoffs_for_one_buyer_lock_the_sales_in_id_order(sandbox: Any) -> None:
    """Another handoff for the same buyer holds the lower sale and goes on to the higher one
    (id order): this handoff must wait for the lower sale before it locks the higher one, or
    the two deadlock."""
    import threading

    import psycopg
    import psycopg.sql
    from django.db import connection

    from conftest import database_dsn, wait_for
    from gavel.auctions.models import Sale
    from gavel.payments.tests.factories import seller_make

    seller, _ = seller_make(sandbox)
    buyer = user_make()
    sale_low = sale_make(seller, buyer, 1_000)
    sale_high = sale_make(seller, buyer, 2_000)
    lock_sale = psycopg.sql.SQL("SELECT 1 FROM {} WHERE id = %s FOR UPDATE").format(
        psycopg.sql.Identifier(Sale._meta.db_table)
    )
    order_ids: list[int] = []
    errors: list[BaseException] = []

    def handoff() -> None:
        try:
            order_ids.append(order_for_sale(sale_id=sale_high.pk).pk)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    with (
        psycopg.connect(database_dsn()) as other,
        psycopg.connect(database_dsn(), autocommit=True) as observer,
    ):
        other.execute(lock_sale, [sale_low.pk])
        thread = threading.Thread(target=handoff)
        thread.start()
        wait_for(
            lambda: (
                observer.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()"
                ).fetchone()
                == (1,)
            ),
            failure="the handoff never waited for the lower sale",
        )
        other.execute("SET lock_timeout = '3s'")
        other.execute(lock_sale, [sale_high.pk])
        other.rollback()
    thread.join(timeout=30)
    assert errors == []
    order = Order.objects.get(pk__in=order_ids)
    assert sorted(order.lines.values_list("sale_id", flat=True)) == [sale_low.pk, sale_high.pk]
