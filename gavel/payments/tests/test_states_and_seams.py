"""The state machine as data, the legacy seams, reconciliation reports, tasks through a real
worker, webhook edge cases and the staff admin actions."""

from __future__ import annotations

import time
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from gavel.auctions.models import Sale
from gavel.gateway.balance import balance_transaction_retrieve
from gavel.ledger import accounts
from gavel.ledger.models import BalanceTransactionLink
from gavel.ledger.reconciliation import reconciliation_run
from gavel.payments.models import (
    AuditLogEntry,
    Order,
    OrderTransition,
    PaymentAttempt,
    PaymentEvent,
    Refund,
)
from gavel.payments.postings import BalanceLink, debit, money_post
from gavel.payments.services.charging import order_capture, order_charge, order_payment_attach
from gavel.payments.services.orders import (
    HistoryStep,
    LineSpec,
    OrderImport,
    order_create,
    order_for_sale,
)
from gavel.payments.states import (
    TERMINAL_STATUSES,
    TRANSITIONS,
    IllegalTransition,
    Operation,
    order_transition,
    status_is_terminal,
)
from gavel.payments.tests.factories import (
    card_save,
    incoming,
    sale_make,
    seller_make,
    user_make,
)
from gavel.payments.tests.helpers import assert_books_clean
from gavel.webhooks.registry import handler_for

S = Order.Status


def test_every_status_is_terminal_or_has_a_way_out() -> None:
    sources = {source for source, _ in TRANSITIONS}
    for status in S.values:
        assert status_is_terminal(status) != (status in sources), status
    assert not any(source in TERMINAL_STATUSES for source, _ in TRANSITIONS)
    # No operation leads back to before the payment once the money is collected.
    for (source, _), targets in TRANSITIONS.items():
        if source in (S.CAPTURED, S.PARTIALLY_REFUNDED, S.REFUNDED, S.DISPUTED):
            assert not targets & {S.PENDING, S.UNKNOWN, S.REQUIRES_ACTION, S.FAILED}


def test_illegal_moves_are_refused_and_write_nothing(sandbox: Any, db: None) -> None:
    seller, _ = seller_make(sandbox)
    buyer = user_make()
    order = order_create(
        buyer=buyer,
        kind="auction",
        currency="usd",
        lines=[LineSpec(seller=seller, hammer_minor=500)],
    )
    assert order.currency == "USD"
    with pytest.raises(IllegalTransition):
        order_transition(order=order, operation=Operation.REFUND, to_status=S.REFUNDED)
    assert order_transition(order=order, operation=Operation.CREATE, to_status=S.PENDING) is False
    assert OrderTransition.objects.filter(order=order).count() == 1
    order_transition(order=order, operation=Operation.CANCEL, to_status=S.CANCELED)
    with pytest.raises(IllegalTransition):
        order_transition(order=order, operation=Operation.CAPTURE, to_status=S.CAPTURED)
    assert Order.objects.get(pk=order.pk).status == S.CANCELED
    # History and events are append-only in the database itself.
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM payments_ordertransition")
    with pytest.raises(IntegrityError), transaction.atomic():
        OrderTransition.objects.filter(order=order).update(reason="edited")


def test_order_create_refuses_bad_input(sandbox: Any, db: None) -> None:
    from gavel.common.errors import ServiceError

    seller, _ = seller_make(sandbox)
    buyer = user_make()
    with pytest.raises(ServiceError, match="Unsupported"):
        order_create(buyer=buyer, kind="auction", currency="XXX", lines=[LineSpec(seller, 100)])
    with pytest.raises(ServiceError):
        order_create(buyer=buyer, kind="auction", currency="USD", lines=[])
    with pytest.raises(ServiceError):
        order_create(buyer=buyer, kind="auction", currency="USD", lines=[LineSpec(seller, 0)])
    with pytest.raises(ServiceError):
        order_create(
            buyer=buyer, kind="auction", currency="USD", lines=[LineSpec(seller, 1)], funds_flow="x"
        )
    with pytest.raises(ServiceError) as missing:
        order_create(buyer=buyer, kind="auction", currency="USD", lines=[LineSpec(buyer, 100)])
    assert missing.value.code == "seller_account_missing"
    assert Order.objects.count() == 0


def test_legacy_order_with_history_and_an_in_flight_destination_authorization(
    sandbox: Any, db: None
) -> None:
    """The legacy import creates an order in its state with its history, and adopts an
    in-flight manual-capture destination charge, which Gavel then captures."""
    seller, account_id = seller_make(sandbox)
    buyer = user_make()
    method = card_save(sandbox, buyer, "pm_card_bypassPending")
    past = timezone.now() - timedelta(days=2)
    order = order_create(
        buyer=buyer,
        kind=Order.Kind.LEGACY,
        currency="USD",
        funds_flow=Order.FundsFlow.DESTINATION_CHARGE,
        lines=[LineSpec(seller=seller, hammer_minor=20_000, description="Legacy lot")],
        imported=OrderImport(
            status=S.PENDING,
            history=[HistoryStep("", S.PENDING, "import", past, "legacy order 77")],
            legacy_reference="legacy:order:77",
        ),
    )
    assert list(order.transitions.values_list("operation", "occurred_at")) == [("import", past)]
    intent = sandbox.client().v1.payment_intents.create(
        params={
            "amount": order.total_minor,
            "currency": "usd",
            "customer": method.setup.customer.stripe_customer_id,
            "payment_method": method.stripe_payment_method_id,
            "confirm": True,
            "capture_method": "manual",
            "transfer_data": {"destination": account_id},
            "application_fee_amount": order.total_minor - 18_000,
        }
    )
    order = order_payment_attach(order_id=order.pk, payment_intent_id=intent.id)
    assert order.status == S.AUTHORIZED
    assert order_payment_attach(order_id=order.pk, payment_intent_id=intent.id).pk == order.pk
    assert PaymentAttempt.objects.count() == 1
    order = order_capture(order_id=order.pk)
    assert order.status == S.CAPTURED
    assert_books_clean()


def test_reconciliation_reports_every_difference_and_the_command_fails(
    sandbox: Any, card_buyer: Any, seller_pair: Any
) -> None:
    (seller, _), _ = seller_pair
    order = order_charge(
        order_id=order_for_sale(sale_id=sale_make(seller, card_buyer, 1_000).pk).pk
    )
    out = StringIO()
    call_command("ledger_reconcile", stdout=out)
    assert "reconciled: no differences" in out.getvalue()
    # Money moved on Stripe that the ledger never heard of.
    sandbox.client().v1.refunds.create(params={"charge": order.stripe_charge_id, "amount": 100})
    report = reconciliation_run()
    kinds = sorted(d.kind for d in report.differences)
    assert kinds == ["balance_mismatch", "missing_in_ledger"]
    missing = next(d for d in report.differences if d.kind == "missing_in_ledger")
    assert (missing.stripe_minor, missing.ledger_minor, missing.currency) == (-100, 0, "USD")
    with pytest.raises(CommandError, match="2 difference"):
        call_command("ledger_reconcile", stdout=StringIO())
    # A link naming a transaction Stripe does not have.
    link = BalanceTransactionLink.objects.first()
    assert link is not None
    BalanceTransactionLink.objects.create(
        balance_transaction_id="txn_ghost", entry=link.entry, amount_minor=5, currency="USD"
    )
    kinds = sorted(d.kind for d in reconciliation_run().differences)
    assert "missing_in_stripe" in kinds


def test_reconciliation_from_the_switch_leaves_the_old_systems_movements_out(
    sandbox: Any, card_buyer: Any, seller_pair: Any, settings: Any
) -> None:
    """After a migration Stripe lists years of the portal's movements the ledger never linked:
    from ``since`` on, only the window's movements are compared, each side counting exactly
    what happened from then on."""
    (seller, _), _ = seller_pair
    before = order_charge(
        order_id=order_for_sale(sale_id=sale_make(seller, card_buyer, 1_000).pk).pk
    )
    # The old system moved money too, straight on Stripe: never in the ledger.
    portal_refund = sandbox.client().v1.refunds.create(
        params={"charge": before.stripe_charge_id, "amount": 100}
    )
    assert [d.kind for d in reconciliation_run().differences] == [
        "missing_in_ledger",
        "balance_mismatch",
    ]
    switch = timezone.now()  # Gavel takes over
    sandbox.advance(5)  # Stripe's clock (whole seconds) moves past it
    order_charge(order_id=order_for_sale(sale_id=sale_make(seller, card_buyer, 2_000).pk).pk)

    window = reconciliation_run(since=switch)

    assert (window.since, [d.describe() for d in window.differences]) == (switch, [])
    platform_compared = window.transactions_compared
    assert platform_compared > 0
    settings.LEDGER_RECONCILE_SINCE = switch
    assert reconciliation_run().is_clean
    out = StringIO()
    call_command("ledger_reconcile", "--since", switch.isoformat(), stdout=out)
    assert f"window: from {switch.isoformat()}" in out.getvalue()
    assert "reconciled: no differences" in out.getvalue()
    with pytest.raises(CommandError, match="UTC offset"):
        call_command("ledger_reconcile", "--since", "2026-11-26T10:00:00", stdout=StringIO())

    # An event from before the switch booked after it (say, replayed from the event store):
    # its entry is of the window, its balance transaction is not. Left out on both sides.
    old = balance_transaction_retrieve(balance_transaction_id=portal_refund.balance_transaction)
    assert old.created_at is not None
    assert old.created_at < switch
    money_post(
        reference="test:portal_refund_booked_late",
        kind="test",
        lines=[debit(accounts.REFUNDS_ABSORBED, 100, "USD")],
        links=[BalanceLink(old)],
    )
    assert reconciliation_run().is_clean
    assert [
        d.kind for d in reconciliation_run(since=timezone.now() - timedelta(days=1)).differences
    ] == []

    # A movement of the window the ledger does not have is still found, with the balance.
    sandbox.client().v1.refunds.create(params={"charge": before.stripe_charge_id, "amount": 50})
    kinds = sorted(d.kind for d in reconciliation_run().differences)
    assert kinds == ["balance_mismatch", "missing_in_ledger"]


@pytest.mark.django_db(transaction=True)
def test_auction_handoff_charges_through_the_outbox_and_a_worker(
    sandbox: Any, celery_worker_thread: Any
) -> None:
    from gavel.auctions.services.sales import sale_create
    from gavel.payments.tests.factories import auction_make

    seller, _ = seller_make(sandbox)
    buyer = user_make()
    card_save(sandbox, buyer, "pm_card_bypassPending")
    auction = auction_make(seller)
    with transaction.atomic():
        sale = sale_create(auction=auction, buyer=buyer, amount_minor=4_000, kind="winner")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if Sale.objects.get(pk=sale.pk).status == Sale.Status.PAID:
            break
        time.sleep(0.2)
    assert Sale.objects.get(pk=sale.pk).status == Sale.Status.PAID
    assert Order.objects.get().status == S.CAPTURED
    assert_books_clean()


def test_tasks_call_their_services(sandbox: Any, card_buyer: Any, seller_pair: Any) -> None:
    from gavel.payments import tasks
    from gavel.payouts import tasks as payout_tasks

    (seller, _), _ = seller_pair
    sale = sale_make(seller, card_buyer, 1_000)
    order_id = tasks.sale_charge.run(sale_id=sale.pk)
    assert Order.objects.get(pk=order_id).status == S.CAPTURED
    Order.objects.filter(pk=order_id).update(transfers_release_after=timezone.now())
    assert tasks.transfers_release_due.run() == 1
    assert tasks.janitor.run() == {
        "payments": {
            "attempts": 0,
            "captures": 0,
            "transfers": 0,
            "refunds": 0,
            "reversals": 0,
            "disputes": 0,
            "orders_cancelled": 0,
        },
        "payouts": 0,
    }
    assert tasks.holds_maintain.run() == {"released": 0, "renewed": 0}
    assert payout_tasks.payout_run.run() == 1
    assert tasks.reconcile.run() == 0


def test_webhooks_for_objects_that_are_not_ours_are_recorded_and_ignored(db: None) -> None:
    pi_handler = handler_for("payment_intent.succeeded")
    assert pi_handler is not None
    event = {
        "id": "evt_foreign",
        "type": "payment_intent.succeeded",
        "created": 1,
        "data": {"object": {"id": "pi_foreign", "status": "succeeded", "metadata": {}}},
    }
    pi_handler(incoming(event))
    pi_handler(incoming(event))
    assert PaymentEvent.objects.filter(stripe_event_id="evt_foreign", applied=False).count() == 1
    dispute_handler = handler_for("charge.dispute.created")
    assert dispute_handler is not None
    dispute_handler(
        incoming(
            {
                "id": "evt_dp",
                "type": "charge.dispute.created",
                "created": 1,
                "data": {
                    "object": {
                        "id": "du_x",
                        "charge": "ch_x",
                        "amount": 5,
                        "status": "needs_response",
                    }
                },
            }
        )
    )
    assert PaymentEvent.objects.filter(type="dispute_unmatched").count() == 1
    payout_handler = handler_for("payout.paid")
    assert payout_handler is not None
    payout_handler(
        incoming(
            {
                "id": "evt_po",
                "type": "payout.paid",
                "created": 1,
                "data": {
                    "object": {
                        "id": "po_x",
                        "status": "paid",
                        "metadata": {"gavel_payout_id": "999"},
                    }
                },
            }
        )
    )


def test_admin_actions_go_through_services_and_the_audit_log(
    sandbox: Any, card_buyer: Any, seller_pair: Any, client: Any
) -> None:
    from gavel.payments.services.refunds import refund_request
    from gavel.payments.tests.factories import events_deliver
    from gavel.users.models import User

    (seller, _), _ = seller_pair
    staff = User.objects.create_superuser(email="root@example.com", password="pw-admin-123")
    client.force_login(staff)
    order = order_charge(
        order_id=order_for_sale(sale_id=sale_make(seller, card_buyer, 2_000).pk).pk
    )
    refund = refund_request(order_id=order.pk, user=card_buyer, amount_minor=100, reason="x")
    response = client.post(
        "/admin/payments/refund/", {"action": "reject", "_selected_action": [refund.pk]}
    )
    assert response.status_code == 302
    assert Refund.objects.get(pk=refund.pk).status == "rejected"
    client.post(
        "/admin/payments/order/", {"action": "refund_in_full", "_selected_action": [order.pk]}
    )
    order.refresh_from_db()
    assert order.status == S.REFUNDED
    client.post(
        "/admin/payments/order/", {"action": "refund_in_full", "_selected_action": [order.pk]}
    )
    other = order_charge(
        order_id=order_for_sale(sale_id=sale_make(seller, card_buyer, 3_000).pk).pk
    )
    sandbox.open_dispute(other.stripe_charge_id)
    events_deliver(sandbox, "charge.dispute.created")
    dispute = other.disputes.get()
    client.post(
        "/admin/payments/dispute/",
        {"action": "submit_order_evidence", "_selected_action": [dispute.pk]},
    )
    assert list(AuditLogEntry.objects.order_by("pk").values_list("action", flat=True)) == [
        "refund_reject",
        "refund_issue",
        "dispute_evidence_submit",
    ]
    for url in (
        "/admin/payments/order/",
        f"/admin/payments/order/{order.pk}/change/",
        "/admin/payments/refund/",
        "/admin/payments/dispute/",
        "/admin/payments/auditlogentry/",
        "/admin/payouts/payout/",
        "/admin/payouts/payoutrun/",
    ):
        assert client.get(url).status_code == 200, url
    assert_books_clean()
