"""The acceptance path through the sandbox: won, charged, split into transfers for two
sellers, refunded in part after transfer, paid out, a dispute lost; the books balanced and
reconciled at every step."""

from __future__ import annotations

from typing import Any

import pytest

from gavel.ledger.selectors import account_balance
from gavel.payments.models import (
    Dispute,
    Order,
    OrderLine,
    Refund,
    SellerBalanceFlag,
    SellerTransfer,
    TransferReversal,
)
from gavel.payments.services.charging import order_charge
from gavel.payments.services.janitor import janitor_run
from gavel.payments.services.orders import order_for_sale
from gavel.payments.services.refunds import refund_issue
from gavel.payments.services.transfers import order_receipt_confirm, orders_release_due
from gavel.payments.tests.factories import events_deliver, sale_make, user_make
from gavel.payments.tests.helpers import assert_books_clean
from gavel.payouts.models import Payout
from gavel.payouts.services import payout_run
from gavel.users.models import User


@pytest.fixture(autouse=True)
def _janitor_now(settings: Any) -> None:
    settings.PAYMENTS_JANITOR_MIN_AGE_SECONDS = 0


def payable(account_id: str) -> int:
    return -account_balance(code=f"seller_payable:{account_id}", currency="USD")


def connected(account_id: str) -> int:
    return account_balance(code=f"connected_balance:{account_id}", currency="USD")


def test_end_to_end_two_sellers_refund_payout_dispute_lost(
    sandbox: Any, card_buyer: User, seller_pair: list[tuple[User, str]]
) -> None:
    (seller_a, acct_a), (seller_b, acct_b) = seller_pair
    staff = user_make()
    sale_a = sale_make(seller_a, card_buyer, 20_000)
    sale_make(seller_b, card_buyer, 10_000)
    order = order_charge(order_id=order_for_sale(sale_id=sale_a.pk).pk)
    assert order.status == Order.Status.CAPTURED
    assert order.total_minor == 31_500
    assert_books_clean()
    assert (payable(acct_a), payable(acct_b)) == (18_000, 9_000)

    # Nothing is released before the holding period, unless the buyer confirms receipt.
    assert orders_release_due() == 0
    order_receipt_confirm(order_id=order.pk, user=card_buyer)
    transfers = list(SellerTransfer.objects.order_by("pk"))
    assert [(t.destination_account_id, t.amount_minor, t.status) for t in transfers] == [
        (acct_a, 18_000, "succeeded"),
        (acct_b, 9_000, "succeeded"),
    ]
    assert (connected(acct_a), connected(acct_b)) == (18_000, 9_000)
    assert_books_clean()
    order_receipt_confirm(order_id=order.pk, user=card_buyer)  # idempotent
    assert SellerTransfer.objects.count() == 2

    # A partial refund after the transfers: 3150 split by what each line has left.
    refund = refund_issue(order_id=order.pk, actor=staff, amount_minor=3_150, reason="damaged")
    assert refund.status == Refund.Status.SUCCEEDED
    order.refresh_from_db()
    assert (order.status, order.refunded_minor) == (Order.Status.PARTIALLY_REFUNDED, 3_150)
    reversals = list(TransferReversal.objects.order_by("pk").values_list("amount_minor", "status"))
    # line A share 2100 -> premium 100, hammer 2000 -> seller 1800 / commission 200.
    assert reversals == [(1_800, "succeeded"), (900, "succeeded")]
    assert (payable(acct_a), payable(acct_b)) == (16_200, 8_100)
    assert (connected(acct_a), connected(acct_b)) == (16_200, 8_100)
    assert account_balance(code="revenue:commission", currency="USD") == -(3_000 - 300)
    assert account_balance(code="revenue:buyers_premium", currency="USD") == -(1_500 - 150)
    assert_books_clean()

    # The payout run pays each seller's available balance.
    result = payout_run()
    assert result.payouts_created == 2
    assert sorted(Payout.objects.values_list("account_id", "amount_minor", "status")) == sorted(
        [(acct_a, 16_200, "pending"), (acct_b, 8_100, "pending")]
    )
    assert (payable(acct_a), payable(acct_b), connected(acct_a), connected(acct_b)) == (0, 0, 0, 0)
    assert_books_clean()
    sandbox.advance(3 * 86_400)
    events_deliver(sandbox, "payout.paid", account=acct_a)
    events_deliver(sandbox, "payout.paid", account=acct_b)
    assert set(Payout.objects.values_list("status", flat=True)) == {"paid"}
    assert payout_run().payouts_created == 0  # nothing left to pay

    # A dispute of the whole remaining charge, lost: sellers bear their share.
    dispute = sandbox.open_dispute(order.stripe_charge_id, amount=28_350)
    events_deliver(sandbox, "charge.dispute.created")
    order.refresh_from_db()
    assert order.status == Order.Status.DISPUTED
    janitor_run()  # executes the reversals the dispute planned
    dispute_reversals = list(
        TransferReversal.objects.filter(dispute__isnull=False).values_list("amount_minor", "status")
    )
    assert dispute_reversals == [(16_200, "succeeded"), (8_100, "succeeded")]
    assert (payable(acct_a), payable(acct_b)) == (-16_200, -8_100)
    assert SellerBalanceFlag.objects.count() == 2
    assert_books_clean()
    sandbox.close_dispute(dispute["id"], "lost")
    events_deliver(sandbox, "charge.dispute.closed")
    order.refresh_from_db()
    assert order.status == Order.Status.DISPUTE_LOST
    assert Dispute.objects.get().outcome == "lost"
    # The platform loses its own share (commission and premium left) and the dispute fee.
    assert account_balance(code="expense:dispute_losses", currency="USD") == 28_350 - 24_300
    assert account_balance(code="expense:dispute_fees", currency="USD") == 1_500
    assert account_balance(code="disputes:pending", currency="USD") == 0
    assert_books_clean()
    # Replays change nothing.
    events_deliver(sandbox, "charge.dispute.created", "charge.dispute.closed")
    assert_books_clean()
    assert OrderLine.objects.filter(disputed_seller_minor__gt=0).count() == 2


def test_dispute_won_gives_the_sellers_share_back(
    sandbox: Any, card_buyer: User, seller_pair: list[tuple[User, str]]
) -> None:
    (seller_a, acct_a), _ = seller_pair
    order = order_charge(
        order_id=order_for_sale(sale_id=sale_make(seller_a, card_buyer, 10_000).pk).pk
    )
    order_receipt_confirm(order_id=order.pk, user=card_buyer)
    dispute = sandbox.open_dispute(order.stripe_charge_id)
    events_deliver(sandbox, "charge.dispute.created")
    janitor_run()
    assert payable(acct_a) == 0
    sandbox.close_dispute(dispute["id"], "won")
    events_deliver(sandbox, "charge.dispute.funds_reinstated", "charge.dispute.closed")
    order.refresh_from_db()
    assert order.status == Order.Status.CAPTURED
    assert payable(acct_a) == 9_000
    assert connected(acct_a) == 9_000
    assert account_balance(code="expense:dispute_fees", currency="USD") == 0
    assert account_balance(code="disputes:pending", currency="USD") == 0
    assert SellerTransfer.objects.filter(kind="reinstatement", status="succeeded").count() == 1
    assert_books_clean()
    # A late or replayed charge.dispute.created never reopens the closed dispute.
    events_deliver(sandbox, "charge.dispute.created", "charge.dispute.funds_withdrawn")
    order.refresh_from_db()
    assert order.status == Order.Status.CAPTURED
    assert TransferReversal.objects.count() == 1
    assert_books_clean()


def test_dispute_before_transfer_lost_charges_the_held_payable(
    sandbox: Any, card_buyer: User, seller_pair: list[tuple[User, str]]
) -> None:
    (seller_a, acct_a), _ = seller_pair
    order = order_charge(
        order_id=order_for_sale(sale_id=sale_make(seller_a, card_buyer, 10_000).pk).pk
    )
    dispute = sandbox.open_dispute(order.stripe_charge_id)
    events_deliver(sandbox, "charge.dispute.created")
    # Frozen: no release while disputed.
    with pytest.raises(Exception, match="cannot be confirmed"):
        order_receipt_confirm(order_id=order.pk, user=card_buyer)
    sandbox.close_dispute(dispute["id"], "lost")
    events_deliver(sandbox, "charge.dispute.closed")
    assert payable(acct_a) == 0
    assert account_balance(code="expense:dispute_losses", currency="USD") == 10_500 - 9_000
    assert SellerTransfer.objects.count() == 0
    assert_books_clean()


def test_refund_before_transfer_pays_the_seller_less(
    sandbox: Any, card_buyer: User, seller_pair: list[tuple[User, str]]
) -> None:
    (seller_a, acct_a), _ = seller_pair
    staff = user_make()
    order = order_charge(
        order_id=order_for_sale(sale_id=sale_make(seller_a, card_buyer, 10_000).pk).pk
    )
    refund_issue(order_id=order.pk, actor=staff, amount_minor=1_050, reason="late")
    assert payable(acct_a) == 8_100
    order_receipt_confirm(order_id=order.pk, user=card_buyer)
    assert SellerTransfer.objects.get().amount_minor == 8_100
    assert TransferReversal.objects.count() == 0
    refund_issue(order_id=order.pk, actor=staff, amount_minor=9_450, reason="returned")
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED
    assert (payable(acct_a), connected(acct_a)) == (0, 0)
    assert_books_clean()


def test_refund_after_payout_is_absorbed_not_negative(
    sandbox: Any, card_buyer: User, seller_pair: list[tuple[User, str]]
) -> None:
    (seller_a, acct_a), _ = seller_pair
    staff = user_make()
    order = order_charge(
        order_id=order_for_sale(sale_id=sale_make(seller_a, card_buyer, 10_000).pk).pk
    )
    order_receipt_confirm(order_id=order.pk, user=card_buyer)
    payout_run()
    refund_issue(order_id=order.pk, actor=staff, amount_minor=10_500, reason="fraud")
    assert payable(acct_a) == 0
    assert account_balance(code="expense:refunds_absorbed", currency="USD") == 9_000
    assert TransferReversal.objects.count() == 0
    assert_books_clean()


def test_lost_webhooks_are_recovered_by_re_reading_stripe(
    sandbox: Any, card_buyer: User, seller_pair: list[tuple[User, str]]
) -> None:
    """No dispute or payout webhook arrives: the janitor and the dispute sync re-read them."""
    from gavel.payments.services.disputes import order_disputes_sync
    from gavel.payouts.services import payouts_janitor_run

    (seller_a, acct_a), _ = seller_pair
    order = order_charge(
        order_id=order_for_sale(sale_id=sale_make(seller_a, card_buyer, 10_000).pk).pk
    )
    order_receipt_confirm(order_id=order.pk, user=card_buyer)
    payout_run()
    sandbox.advance(3 * 86_400)
    assert payouts_janitor_run() == 1
    assert Payout.objects.get().status == "paid"
    dispute = sandbox.open_dispute(order.stripe_charge_id)
    assert order_disputes_sync(order_id=order.pk) == 1
    order.refresh_from_db()
    assert order.status == Order.Status.DISPUTED
    sandbox.close_dispute(dispute["id"], "won")
    counts = janitor_run()
    assert counts["disputes"] == 1
    assert counts["reversals"] == 1  # the reversal the dispute planned
    order.refresh_from_db()
    assert order.status == Order.Status.CAPTURED
    assert payable(acct_a) == 9_000 - 9_000  # paid out; the reversal was given back
    assert_books_clean()


def test_transfers_wait_while_connect_does_not_allow_them(
    sandbox: Any, card_buyer: User, seller_pair: list[tuple[User, str]]
) -> None:
    from gavel.connect.models import ConnectedAccount

    (seller_a, acct_a), _ = seller_pair
    order = order_charge(
        order_id=order_for_sale(sale_id=sale_make(seller_a, card_buyer, 10_000).pk).pk
    )
    ConnectedAccount.objects.filter(stripe_account_id=acct_a).update(
        capabilities={"card_payments": "active", "transfers": "inactive"}
    )
    order_receipt_confirm(order_id=order.pk, user=card_buyer)
    assert SellerTransfer.objects.count() == 0
    ConnectedAccount.objects.filter(stripe_account_id=acct_a).update(
        capabilities={"card_payments": "active", "transfers": "active"}
    )
    assert orders_release_due() == 1
    assert SellerTransfer.objects.get().amount_minor == 9_000
    assert_books_clean()


def test_refunds_split_by_what_each_line_has_left_after_an_absorbed_share(
    sandbox: Any, card_buyer: User, seller_pair: list[tuple[User, str]]
) -> None:
    """Seller A was paid out (their refund share is absorbed), seller B not yet transferred:
    each partial refund splits by what each line really has left, and a full refund leaves no
    seller holding money."""
    from gavel.connect.models import ConnectedAccount

    (seller_a, acct_a), (seller_b, acct_b) = seller_pair
    staff = user_make()
    sale_a = sale_make(seller_a, card_buyer, 10_000)
    sale_make(seller_b, card_buyer, 10_000)
    order = order_charge(order_id=order_for_sale(sale_id=sale_a.pk).pk)
    assert order.total_minor == 21_000
    ConnectedAccount.objects.filter(stripe_account_id=acct_b).update(
        capabilities={"card_payments": "active", "transfers": "inactive"}
    )
    order_receipt_confirm(order_id=order.pk, user=card_buyer)
    assert list(SellerTransfer.objects.values_list("destination_account_id", "amount_minor")) == [
        (acct_a, 9_000)
    ]
    assert payout_run().payouts_created == 1
    assert (payable(acct_a), payable(acct_b)) == (0, 9_000)

    refund_issue(order_id=order.pk, actor=staff, amount_minor=10_500, reason="half")
    line_a, line_b = OrderLine.objects.order_by("pk")
    # 5250 per line: premium 250, seller 4500, commission 500; A's seller part absorbed.
    assert (line_a.refunded_absorbed_minor, line_a.refunded_seller_minor) == (4_500, 0)
    assert (line_b.refunded_absorbed_minor, line_b.refunded_seller_minor) == (0, 4_500)
    assert (line_a.refunded_minor, line_b.refunded_minor) == (5_250, 5_250)
    assert payable(acct_b) == 4_500

    refund_issue(order_id=order.pk, actor=staff, amount_minor=10_500, reason="the rest")
    order.refresh_from_db()
    assert (order.status, order.refunded_minor) == (Order.Status.REFUNDED, 21_000)
    line_a, line_b = OrderLine.objects.order_by("pk")
    assert (line_a.refunded_minor, line_b.refunded_minor) == (10_500, 10_500)
    assert (line_a.refunded_absorbed_minor, line_a.refunded_seller_minor) == (9_000, 0)
    assert (line_b.refunded_absorbed_minor, line_b.refunded_seller_minor) == (0, 9_000)
    assert (payable(acct_a), payable(acct_b)) == (0, 0)
    assert account_balance(code="expense:refunds_absorbed", currency="USD") == 9_000
    assert account_balance(code="revenue:commission", currency="USD") == 0
    assert account_balance(code="revenue:buyers_premium", currency="USD") == 0
    assert_books_clean()
