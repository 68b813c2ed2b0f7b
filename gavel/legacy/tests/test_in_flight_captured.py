"""Captured in-flight legacy payments carried on by Gavel, end to end in the Stripe sandbox:
the charge (and its dispute) made for real, written into a generated portal as ``paid`` or
``disputed``, imported, adopted; then the seller paid by ``order_receipt_confirm``, or the
dispute's outcome applied from Stripe's webhooks by a real Celery worker."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from io import StringIO
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.management import call_command
from rest_framework.test import APIClient

from conftest import wait_for
from gavel.connect.models import ConnectedAccount
from gavel.connect.services import connected_account_refresh
from gavel.gateway.disputes import dispute_retrieve
from gavel.gateway.webhooks import signature_header
from gavel.ledger.models import BalanceTransactionLink, JournalEntry
from gavel.ledger.reconciliation import reconciliation_run
from gavel.ledger.selectors import account_balance, trial_balance
from gavel.legacy.importer import ImportOptions, legacy_import
from gavel.legacy.orders import orders_in_flight_adopt
from gavel.legacy.tests.conftest import generated
from gavel.legacy.tests.portal_rows import (
    BUYER,
    DISPUTED,
    NET,
    PAID,
    SUM,
    PortalPayment,
    portal_transaction_write,
)
from gavel.payments.models import Dispute, Order, PaymentEvent, SellerTransfer
from gavel.payments.services.disputes import dispute_closed_apply, dispute_opened_apply
from gavel.payments.services.transfers import order_receipt_confirm
from gavel.payments.tests.helpers import assert_books_clean
from gavel.payouts.models import Payout
from gavel.payouts.services import payout_run
from gavel.users.models import User
from gavel.webhooks.services.drain import events_drain

DISPUTE_FEE = 1_500  # the sandbox's (and Stripe's US) dispute fee
ORDER_REFERENCE = "legacy:transactions:900001"


def _seller_and_buyer(sandbox: Any) -> tuple[str, str]:
    client = sandbox.client()
    account = client.v1.accounts.create(
        params={
            "country": "US",
            "type": "express",
            "capabilities": {
                "card_payments": {"requested": True},
                "transfers": {"requested": True},
            },
        }
    )
    sandbox.complete_onboarding(account.id)
    customer = client.v1.customers.create(params={"email": "legacy.buyer@example.com"})
    return str(account.id), str(customer.id)


def _portal_charge(sandbox: Any, customer: str, *, card: str = "pm_card_visa") -> PortalPayment:
    """The portal's capture, made for real: a platform charge (the portal held the money on
    the platform until its payout job transferred it); what the portal stored of it."""
    client = sandbox.client()
    intent = client.v1.payment_intents.create(
        params={
            "amount": SUM,
            "currency": "usd",
            "customer": customer,
            "payment_method": card,
            "confirm": True,
            "capture_method": "manual",
        }
    )
    intent = client.v1.payment_intents.capture(intent.id)
    charge = client.v1.charges.retrieve(str(intent.latest_charge))
    fee = client.v1.balance_transactions.retrieve(str(charge.balance_transaction)).fee
    return PortalPayment(
        PAID,
        str(intent.id),
        status="paid",
        intent_status="success",
        charge_id=str(charge.id),
        real_fee_cents=int(fee),
    )


def _imported(
    sandbox: Any, payment: PortalPayment, account: str, customer: str, dialect: str = "postgres"
) -> Order:
    source = generated(dialect, f"captured_{os.getpid()}", payments=0)
    portal_transaction_write(
        source.database, payment=payment, account_id=account, customer=customer
    )
    legacy_import(database=source.database, options=ImportOptions(is_resumable=False))
    return Order.objects.get(legacy_reference=ORDER_REFERENCE)


def _adopt() -> str:
    out = StringIO()
    call_command("legacy_adopt_in_flight", stdout=out)
    return out.getvalue()


def _reconciliation_kinds() -> list[str]:
    return sorted(difference.kind for difference in reconciliation_run().differences)


@pytest.mark.django_db
@pytest.mark.parametrize("dialect", ["postgres", "mysql"])
def test_a_paid_unconfirmed_payment_is_transferred_to_the_seller_by_gavel(
    sandbox: Any, dialect: str
) -> None:
    account, customer = _seller_and_buyer(sandbox)
    payment = _portal_charge(sandbox, customer)
    order = _imported(sandbox, payment, account, customer, dialect)
    assert (order.status, order.funds_flow, order.captured_minor, order.stripe_charge_id) == (
        "captured",
        "separate_transfers",
        SUM,
        payment.charge_id,
    )
    assert account_balance(code=f"seller_payable:{account}", currency="USD") == -NET
    # The portal's capture is in the ledger, but not yet tied to Stripe's balance transaction.
    assert _reconciliation_kinds() == ["missing_in_ledger"]

    assert _adopt() == "adopted 1, refused 0, retry later 0\n"
    assert orders_in_flight_adopt().adopted == []
    link = BalanceTransactionLink.objects.get(source_id=payment.charge_id)
    assert link.entry.reference == "legacy:stripe_payments:900001:capture"
    assert link.amount_minor == SUM - (payment.real_fee_cents or 0)
    assert_books_clean()

    # The buyer confirms receipt: Gavel transfers the seller's net from the platform.
    connected_account_refresh(account_pk=ConnectedAccount.objects.get(stripe_account_id=account).pk)
    buyer = User.objects.get(legacy_person_id=BUYER)
    order = order_receipt_confirm(order_id=order.pk, user=buyer)
    transfer = SellerTransfer.objects.get()
    assert (transfer.kind, transfer.status, transfer.amount_minor) == ("sale", "succeeded", NET)
    assert transfer.destination_account_id == account
    stripe_transfer = sandbox.get_object(transfer.stripe_transfer_id)
    assert (stripe_transfer["amount"], stripe_transfer["destination"]) == (NET, account)
    assert stripe_transfer["source_transaction"] == payment.charge_id
    assert order.lines.get().transferred_minor == NET
    # The money is on the seller's Stripe balance; it is owed to them until paid out.
    assert account_balance(code=f"connected_balance:{account}", currency="USD") == NET
    assert account_balance(code=f"seller_payable:{account}", currency="USD") == -NET
    assert_books_clean()

    sandbox.advance(7 * 86_400)  # the transferred funds become available on the account
    assert payout_run().payouts_created == 1
    assert list(Payout.objects.values_list("account_id", "amount_minor")) == [(account, NET)]
    assert account_balance(code=f"seller_payable:{account}", currency="USD") == 0
    assert_books_clean()


@pytest.mark.django_db
def test_a_confirmed_payment_the_portal_had_not_transferred_is_transferred_at_adoption(
    sandbox: Any,
) -> None:
    account, customer = _seller_and_buyer(sandbox)
    paid = _portal_charge(sandbox, customer)
    payment = PortalPayment(
        (*PAID, "confirmed"),
        paid.intent_id,
        status="paid",
        intent_status="success",
        charge_id=paid.charge_id,
        real_fee_cents=paid.real_fee_cents,
    )
    order = _imported(sandbox, payment, account, customer)
    assert (order.status, order.receipt_confirmed_at) == ("captured", None)
    connected_account_refresh(account_pk=ConnectedAccount.objects.get(stripe_account_id=account).pk)

    assert _adopt() == "adopted 1, refused 0, retry later 0\n"
    assert orders_in_flight_adopt().adopted == []

    order.refresh_from_db()
    assert order.receipt_confirmed_at is not None
    transfer = SellerTransfer.objects.get()
    assert (transfer.kind, transfer.status, transfer.amount_minor) == ("sale", "succeeded", NET)
    stripe_transfer = sandbox.get_object(transfer.stripe_transfer_id)
    assert (stripe_transfer["amount"], stripe_transfer["destination"]) == (NET, account)
    assert account_balance(code=f"connected_balance:{account}", currency="USD") == NET
    assert_books_clean()


def test_a_charge_stripe_disagrees_with_is_refused_and_nothing_is_linked(
    sandbox: Any, db: None
) -> None:
    account, customer = _seller_and_buyer(sandbox)
    payment = _portal_charge(sandbox, customer)
    wrong_fee = replace(payment, real_fee_cents=(payment.real_fee_cents or 0) + 1)
    order = _imported(sandbox, wrong_fee, account, customer)

    out = StringIO()
    with pytest.raises(Exception, match="1 in-flight orders refused"):
        call_command("legacy_adopt_in_flight", stdout=out)
    assert out.getvalue().splitlines()[1] == (
        f"order {order.pk}: charge {payment.charge_id}: Stripe's net"
        f" {SUM - (payment.real_fee_cents or 0)} USD, the legacy capture entry"
        f" {SUM - (payment.real_fee_cents or 0) - 1} USD (amount or real fee differs)"
    )
    assert not BalanceTransactionLink.objects.exists()
    assert Order.objects.get(pk=order.pk).status == "captured"


def _disputed(sandbox: Any) -> tuple[Order, PortalPayment, str, str]:
    """A charge disputed on Stripe while the portal ran, imported as ``disputed``."""
    account, customer = _seller_and_buyer(sandbox)
    paid = _portal_charge(sandbox, customer)
    dispute = sandbox.open_dispute(paid.charge_id)
    payment = replace(paid, states=DISPUTED)
    order = _imported(sandbox, payment, account, customer)
    assert (order.status, order.disputed_minor) == ("disputed", SUM)
    # The import booked the withdrawal (legacy dispute_opened), without Stripe's dispute fee.
    assert account_balance(code="disputes:pending", currency="USD") == SUM
    return order, payment, str(dispute["id"]), account


def _assert_adopted_open(order: Order, dispute_id: str) -> None:
    dispute = Dispute.objects.get()
    assert (dispute.order_id, dispute.stripe_dispute_id, dispute.outcome) == (
        order.pk,
        dispute_id,
        "open",
    )
    assert (dispute.stripe_status, dispute.amount_minor, dispute.withdrawal_booked_minor) == (
        "needs_response",
        SUM,
        SUM,
    )
    assert Order.objects.get(pk=order.pk).status == "disputed"
    # One withdrawal in the books, not two; the fee the portal never booked is added.
    assert account_balance(code="disputes:pending", currency="USD") == SUM
    assert account_balance(code="expense:dispute_fees", currency="USD") == DISPUTE_FEE
    assert JournalEntry.objects.filter(reference=f"dispute:{dispute_id}:withdrawal").count() == 1
    assert_books_clean()


def _wire_webhooks(sandbox: Any) -> None:
    """Stripe's events from now on go to Gavel's endpoint (signed intake, stored, drained by
    the worker), as after the cutover's webhook switch."""
    sandbox.client().v1.webhook_endpoints.create(
        params={
            "url": "http://testserver/webhooks/stripe/",
            "enabled_events": ["charge.dispute.closed", "charge.dispute.funds_reinstated"],
        }
    )
    api = APIClient()

    def transport(url: str, headers: dict[str, str], body: bytes) -> int:
        signed = signature_header(
            payload=body, secret=settings.STRIPE_WEBHOOK_SECRETS[0], timestamp=int(time.time())
        )
        response = api.post(
            urlsplit(url).path,
            data=body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=signed,
        )
        return int(response.status_code)

    sandbox.set_webhook_transport(transport)


def _closed() -> bool:
    return Dispute.objects.exclude(outcome="open").exists()


@pytest.mark.django_db(transaction=True)
def test_a_disputed_payment_is_adopted_and_won_from_stripes_webhook(
    sandbox: Any, celery_worker_thread: Any
) -> None:
    order, _, dispute_id, account = _disputed(sandbox)

    assert _adopt() == "adopted 1, refused 0, retry later 0\n"
    assert orders_in_flight_adopt().adopted == []
    _assert_adopted_open(order, dispute_id)

    _wire_webhooks(sandbox)
    sandbox.close_dispute(dispute_id, "won")
    wait_for(_closed, timeout_seconds=30, failure="the worker did not apply the event in time")

    dispute = Dispute.objects.get()
    assert (dispute.outcome, dispute.stripe_status) == ("won", "won")
    order.refresh_from_db()
    assert (order.status, order.disputed_minor) == ("captured", 0)
    assert list(order.transitions.order_by("pk").values_list("to_status", "operation"))[-2:] == [
        ("disputed", "legacy_import"),
        ("captured", "dispute_win"),
    ]
    # Funds and fee reinstated: nothing left on hold, the seller still owed their net.
    assert account_balance(code="disputes:pending", currency="USD") == 0
    assert account_balance(code="expense:dispute_fees", currency="USD") == 0
    assert account_balance(code=f"seller_payable:{account}", currency="USD") == -NET
    assert_books_clean()


@pytest.mark.django_db(transaction=True)
def test_a_disputed_payment_is_adopted_and_lost_from_stripes_webhook(
    sandbox: Any, celery_worker_thread: Any
) -> None:
    order, _, dispute_id, account = _disputed(sandbox)
    assert _adopt() == "adopted 1, refused 0, retry later 0\n"
    _assert_adopted_open(order, dispute_id)

    _wire_webhooks(sandbox)
    sandbox.close_dispute(dispute_id, "lost")
    wait_for(_closed, timeout_seconds=30, failure="the worker did not apply the event in time")

    dispute = Dispute.objects.get()
    assert (dispute.outcome, dispute.stripe_status) == ("lost", "lost")
    order.refresh_from_db()
    assert order.status == "dispute_lost"
    # Lost: the hold is released into the loss; the fee stays spent; the seller (who was not
    # paid yet) bears their share of the hammer per PAYMENTS_SELLERS_BEAR_DISPUTES.
    assert account_balance(code="disputes:pending", currency="USD") == 0
    assert account_balance(code="expense:dispute_fees", currency="USD") == DISPUTE_FEE
    # (the whole order is disputed: the seller's share is all of their net)
    assert dispute.recovered_from_sellers_minor == NET
    assert account_balance(code=f"seller_payable:{account}", currency="USD") == 0
    assert account_balance(code="expense:dispute_losses", currency="USD") == SUM - NET
    assert_books_clean()


@pytest.mark.django_db
@pytest.mark.parametrize("outcome", ["won", "lost"])
def test_a_dispute_stripe_closed_before_the_adoption_gets_its_outcome_at_once(
    sandbox: Any, outcome: str
) -> None:
    account, customer = _seller_and_buyer(sandbox)
    paid = _portal_charge(sandbox, customer)
    dispute_id = str(sandbox.open_dispute(paid.charge_id)["id"])
    sandbox.close_dispute(dispute_id, outcome)  # during the freeze: the portal never saw it
    payment = replace(paid, states=DISPUTED)
    order = _imported(sandbox, payment, account, customer)

    assert _adopt() == "adopted 1, refused 0, retry later 0\n"
    assert orders_in_flight_adopt().adopted == []

    dispute = Dispute.objects.get()
    assert (dispute.outcome, dispute.stripe_status, dispute.withdrawal_booked_minor) == (
        outcome,
        outcome,
        SUM,
    )
    expected_status = "captured" if outcome == "won" else "dispute_lost"
    assert Order.objects.get(pk=order.pk).status == expected_status
    assert account_balance(code="disputes:pending", currency="USD") == 0
    assert account_balance(code="expense:dispute_fees", currency="USD") == (
        0 if outcome == "won" else DISPUTE_FEE
    )
    assert_books_clean()


def test_a_disputed_order_stripe_knows_no_dispute_of_is_refused(sandbox: Any, db: None) -> None:
    account, customer = _seller_and_buyer(sandbox)
    paid = _portal_charge(sandbox, customer)
    payment = replace(paid, states=DISPUTED)
    order = _imported(sandbox, payment, account, customer)

    result = orders_in_flight_adopt()

    assert (result.adopted, result.refused) == (
        [],
        {order.pk: f"Stripe has no dispute on charge {paid.charge_id}"},
    )
    assert not Dispute.objects.exists()
    assert not BalanceTransactionLink.objects.exists()
    assert Order.objects.get(pk=order.pk).status == "disputed"


@pytest.mark.django_db
def test_a_dispute_webhook_before_the_adoption_does_not_post_the_withdrawal_twice(
    sandbox: Any,
) -> None:
    order, _, dispute_id, _ = _disputed(sandbox)
    _wire_webhooks(sandbox)
    sandbox.close_dispute(dispute_id, "won")  # reaches Gavel before legacy_adopt_in_flight
    assert events_drain() == 2  # charge.dispute.closed, charge.dispute.funds_reinstated

    dispute = Dispute.objects.get()
    assert (dispute.order_id, dispute.outcome, dispute.withdrawal_booked_minor) == (
        order.pk,
        "won",
        SUM,
    )
    assert Order.objects.get(pk=order.pk).status == "captured"
    assert account_balance(code="disputes:pending", currency="USD") == 0
    assert account_balance(code="expense:dispute_fees", currency="USD") == 0
    # Only the portal's charge is not tied to Stripe yet: the adoption does it.
    assert _reconciliation_kinds() == ["missing_in_ledger"]
    assert _adopt() == "adopted 1, refused 0, retry later 0\n"
    assert_books_clean()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("outcome", "closing_state", "payment_status", "status"),
    [("lost", "refunded", "canceled", "dispute_lost"), ("won", "dismissed", "paid", "captured")],
)
def test_a_dispute_the_portal_saw_closed_is_not_posted_again_when_its_events_come(
    sandbox: Any, outcome: str, closing_state: str, payment_status: str, status: str
) -> None:
    account, customer = _seller_and_buyer(sandbox)
    paid = _portal_charge(sandbox, customer)
    dispute_id = str(sandbox.open_dispute(paid.charge_id)["id"])
    sandbox.close_dispute(dispute_id, outcome)
    payment = replace(paid, states=(*DISPUTED, closing_state), status=payment_status)
    order = _imported(sandbox, payment, account, customer)
    assert order.status == status
    entries = JournalEntry.objects.count()
    # The portal's history is not tied to Stripe's balance transactions (docs/legacy-migration.md,
    # "Not built yet"): what reconciliation lists for it must not change either.
    unreconciled = _reconciliation_kinds()
    balances = {
        code: account_balance(code=code, currency="USD")
        for code in ("disputes:pending", "platform:stripe_balance", "expense:dispute_fees")
    }

    # Its events, replayed from the event store (Stripe sent them to the portal long ago).
    stripe_dispute = dispute_retrieve(dispute_id=dispute_id)
    assert stripe_dispute.status == outcome
    assert (
        dispute_opened_apply(stripe_dispute=stripe_dispute, stripe_event_id="evt_late_1") is False
    )
    assert (
        dispute_closed_apply(stripe_dispute=stripe_dispute, stripe_event_id="evt_late_2") is False
    )

    # The import's books stand: nothing posted again, no dispute opened on the order.
    assert JournalEntry.objects.count() == entries
    assert balances == {code: account_balance(code=code, currency="USD") for code in balances}
    assert not Dispute.objects.exists()
    assert Order.objects.get(pk=order.pk).status == status
    recorded = PaymentEvent.objects.filter(stripe_object_id=dispute_id).order_by("pk")
    assert [(event.type, event.applied) for event in recorded] == [
        ("dispute_settled_by_import", False),
        ("dispute_settled_by_import", False),
    ]
    assert all(total == 0 for total in trial_balance().values())
    assert _reconciliation_kinds() == unreconciled
