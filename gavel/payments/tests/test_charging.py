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


def _single_order(sandbox: Any, card: str, amount: int = 10_000) -> tuple[Order, User]:
    from gavel.payments.tests.factories import card_save, seller_make, user_make

    seller, _ = seller_make(sandbox)
    buyer = user_make()
    card_save(sandbox, buyer, card)
    sale = sale_make(seller, buyer, amount)
    return order_charge(order_id=order_for_sale(sale_id=sale.pk).pk), buyer


def test_authentication_required_puts_the_order_in_requires_action_then_3ds_finishes(
    sandbox: Any, db: None
) -> None:
    from gavel.payments.services.charging import (
        order_authentication_secret,
        order_payment_refresh,
    )

    order, buyer = _single_order(sandbox, "pm_card_authenticationRequired")
    assert order.status == Order.Status.REQUIRES_ACTION
    sale = Sale.objects.get()
    assert sale.status == Sale.Status.PAYMENT_FAILED
    intent_id, secret, payment_method = order_authentication_secret(order_id=order.pk, user=buyer)
    assert secret.startswith(f"{intent_id}_secret_")
    # The app confirms on-session with the client secret (PaymentSheet), passing 3-D Secure.
    client = sandbox.client()
    client.v1.payment_intents.confirm(intent_id, params={"payment_method": payment_method})
    sandbox.complete_3ds(intent_id)
    order = order_payment_refresh(order_id=order.pk, user=buyer)
    assert order.status == Order.Status.CAPTURED
    sale.refresh_from_db()
    assert sale.status == Sale.Status.PAID
    assert ledger_is_balanced()
    assert reconciliation_run().is_clean


def test_decline_then_retry_with_a_new_card(sandbox: Any, db: None) -> None:
    from gavel.payments.services.charging import order_payment_retry
    from gavel.payments.tests.factories import card_save

    order, buyer = _single_order(sandbox, "pm_card_chargeCustomerFail")
    assert order.status == Order.Status.FAILED
    attempt = PaymentAttempt.objects.get()
    assert (attempt.status, attempt.decline_code) == ("requires_payment_method", "generic_decline")
    assert Sale.objects.get().status == Sale.Status.PAYMENT_FAILED
    new_card = card_save(sandbox, buyer, "pm_card_bypassPending")
    order = order_payment_retry(
        order_id=order.pk, user=buyer, payment_method_id=new_card.stripe_payment_method_id
    )
    assert order.status == Order.Status.CAPTURED
    assert list(PaymentAttempt.objects.order_by("pk").values_list("status", flat=True)) == [
        "canceled",
        "succeeded",
    ]
    assert reconciliation_run().is_clean


def test_retry_refused_when_paid_and_nothing_written(sandbox: Any, db: None) -> None:
    import pytest

    from gavel.common.errors import ConflictError
    from gavel.payments.services.charging import order_payment_retry

    order, buyer = _single_order(sandbox, "pm_card_bypassPending")
    with pytest.raises(ConflictError):
        order_payment_retry(order_id=order.pk, user=buyer)
    assert PaymentAttempt.objects.count() == 1


def test_no_payment_method_fails_the_order(sandbox: Any, db: None) -> None:
    from gavel.payments.tests.factories import seller_make, user_make

    seller, _ = seller_make(sandbox)
    buyer = user_make()
    order = order_charge(order_id=order_for_sale(sale_id=sale_make(seller, buyer, 1_000).pk).pk)
    assert order.status == Order.Status.FAILED
    assert PaymentAttempt.objects.count() == 0


def test_late_webhook_never_moves_the_order_backwards(sandbox: Any, db: None) -> None:
    from gavel.payments.models import PaymentEvent
    from gavel.payments.tests.factories import events_deliver

    order, buyer = _single_order(sandbox, "pm_card_authenticationRequired")
    from gavel.payments.services.charging import order_authentication_secret, order_payment_refresh

    intent_id, _, payment_method = order_authentication_secret(order_id=order.pk, user=buyer)
    sandbox.client().v1.payment_intents.confirm(
        intent_id, params={"payment_method": payment_method}
    )
    sandbox.complete_3ds(intent_id)
    order_payment_refresh(order_id=order.pk, user=buyer)
    # Now the old events arrive: payment_failed and requires_action must change nothing.
    events_deliver(
        sandbox,
        "payment_intent.payment_failed",
        "payment_intent.requires_action",
        "payment_intent.succeeded",
    )
    order.refresh_from_db()
    assert order.status == Order.Status.CAPTURED
    late = PaymentEvent.objects.filter(applied=False, type="payment_intent.requires_payment_method")
    assert late.exists()
    assert ledger_is_balanced()


def test_buy_now_destination_charge_with_refund(sandbox: Any, settings: Any, db: None) -> None:
    from gavel.payments.services.refunds import refund_issue
    from gavel.payments.tests.factories import card_save, seller_make, user_make

    settings.PAYMENTS_BUY_NOW_FUNDS_FLOW = "destination_charge"
    seller, acct = seller_make(sandbox)
    buyer = user_make()
    card_save(sandbox, buyer, "pm_card_bypassPending")
    sale = sale_make(seller, buyer, 10_000, kind=Sale.Kind.BUY_NOW)
    order = order_charge(order_id=order_for_sale(sale_id=sale.pk).pk)
    assert (order.funds_flow, order.status) == ("destination_charge", Order.Status.CAPTURED)
    assert account_balance(code=f"connected_balance:{acct}", currency="USD") == 9_000
    assert account_balance(code=f"seller_payable:{acct}", currency="USD") == -9_000
    assert reconciliation_run().is_clean
    refund_issue(order_id=order.pk, actor=user_make(), amount_minor=5_250, reason="half")
    assert account_balance(code=f"seller_payable:{acct}", currency="USD") == -4_500
    assert account_balance(code=f"connected_balance:{acct}", currency="USD") == 4_500
    assert ledger_is_balanced()
    assert [d.describe() for d in reconciliation_run().differences] == []


def test_unpaid_window_closed_cancels_the_order_and_its_open_intent(sandbox: Any, db: None) -> None:
    import pytest

    from gavel.common.errors import ConflictError
    from gavel.payments.services.charging import order_payment_retry
    from gavel.payments.services.janitor import janitor_run

    order, buyer = _single_order(sandbox, "pm_card_authenticationRequired")
    assert order.status == Order.Status.REQUIRES_ACTION
    Sale.objects.update(status=Sale.Status.CANCELLED)  # auctions closed the unpaid window
    with pytest.raises(ConflictError):
        order_payment_retry(order_id=order.pk, user=buyer)
    assert janitor_run()["orders_cancelled"] == 1
    order.refresh_from_db()
    assert order.status == Order.Status.CANCELED
    assert PaymentAttempt.objects.get().status == "canceled"
    assert janitor_run()["orders_cancelled"] == 0


def test_order_with_a_sale_still_open_is_not_cancelled(sandbox: Any, db: None) -> None:
    from gavel.payments.services.charging import orders_unpaid_cancel
    from gavel.payments.tests.factories import card_save, seller_make, user_make

    seller, _ = seller_make(sandbox)
    buyer = user_make()
    card_save(sandbox, buyer, "pm_card_chargeCustomerFail")
    first = sale_make(seller, buyer, 1_000)
    sale_make(seller, buyer, 2_000)
    order = order_charge(order_id=order_for_sale(sale_id=first.pk).pk)
    assert (order.status, order.lines.count()) == (Order.Status.FAILED, 2)
    Sale.objects.filter(pk=first.pk).update(status=Sale.Status.CANCELLED)
    assert orders_unpaid_cancel() == 0
    Sale.objects.update(status=Sale.Status.CANCELLED)
    assert orders_unpaid_cancel() == 1
