"""Charging winners through the sandbox: success, 3-D Secure, declines, combined checkouts."""

from __future__ import annotations

from typing import Any

from gavel.auctions.models import Sale
from gavel.ledger.reconciliation import reconciliation_run
from gavel.ledger.selectors import account_balance, ledger_is_balanced
from gavel.payments.models import Order, OrderTransition, PaymentAttempt
from gavel.payments.services.charging import order_charge
from gavel.payments.services.orders import order_for_sale
from gavel.payments.tests.factories import sale_make
from gavel.users.models import User


def test_winner_charged_split_over_two_sellers_and_posted(
    sandbox: Any, card_buyer: User, seller_pair: list[tuple[User, str]]
) -> None:
    (seller_a, acct_a), (seller_b, acct_b) = seller_pair
    sale_a = sale_make(seller_a, card_buyer, 10_000)
    sale_b = sale_make(seller_b, card_buyer, 5_000)

    order = order_for_sale(sale_id=sale_a.pk)
    order = order_charge(order_id=order.pk)

    assert order.status == Order.Status.CAPTURED
    assert order.lines.count() == 2
    # 10% commission, 5% premium: buyer pays 15000 + 750.
    assert (order.subtotal_minor, order.buyers_premium_minor, order.commission_minor) == (
        15_000,
        750,
        1_500,
    )
    assert order.total_minor == 15_750
    assert order.captured_minor == 15_750
    # Stripe: 2.9% + 30 = 457 (half up), taken from the balance transaction.
    assert order.stripe_fee_minor == 487
    assert account_balance(code=f"seller_payable:{acct_a}", currency="USD") == -9_000
    assert account_balance(code=f"seller_payable:{acct_b}", currency="USD") == -4_500
    assert account_balance(code="revenue:commission", currency="USD") == -1_500
    assert account_balance(code="revenue:buyers_premium", currency="USD") == -750
    assert account_balance(code="platform:stripe_balance", currency="USD") == 15_750 - 487
    assert ledger_is_balanced()
    assert reconciliation_run().is_clean
    assert set(Sale.objects.values_list("status", flat=True)) == {Sale.Status.PAID}
    assert list(
        OrderTransition.objects.filter(order=order).values_list("from_status", "to_status")
    ) == [("", "pending"), ("pending", "captured")]
    # The handoff of the second sale finds the same order and charges nothing more.
    assert order_for_sale(sale_id=sale_b.pk).pk == order.pk
    assert order_charge(order_id=order.pk).status == Order.Status.CAPTURED
    assert PaymentAttempt.objects.count() == 1
