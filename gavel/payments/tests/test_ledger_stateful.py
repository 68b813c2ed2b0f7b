"""A stateful property-based test: random sequences of payments, transfers, refunds,
disputes and payouts through the sandbox keep the ledger's invariants."""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import transaction
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from gavel.gateway.client import client_bind_sandbox
from gavel.ledger.models import LedgerAccount
from gavel.ledger.reconciliation import reconciliation_run
from gavel.ledger.selectors import account_balance, balances_by_account, trial_balance
from gavel.payments.models import Dispute, Order, SellerBalanceFlag
from gavel.payments.services.charging import order_charge
from gavel.payments.services.janitor import janitor_run
from gavel.payments.services.orders import order_for_sale
from gavel.payments.services.refunds import order_refundable_minor, refund_issue
from gavel.payments.services.transfers import order_receipt_confirm
from gavel.payments.tests.factories import (
    card_save,
    events_deliver,
    sale_make,
    seller_make,
    user_make,
)
from gavel.payouts.services import payout_run
from stripe_sandbox import Sandbox


class LedgerMachine(RuleBasedStateMachine):
    """Each run starts from nothing: a fresh sandbox, and a savepoint rolled back after."""

    api_key: ClassVar[str]
    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self.sandbox = Sandbox(api_keys=[self.api_key])
        client_bind_sandbox(self.sandbox.http_client())
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        self.buyer = user_make()
        card_save(self.sandbox, self.buyer, "pm_card_bypassPending")
        self.staff = user_make()
        self.sellers = [seller_make(self.sandbox), seller_make(self.sandbox)]

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self.atomic.__exit__(None, None, None)

    @rule(
        target=orders,
        hammers=st.lists(st.integers(100, 50_000), min_size=1, max_size=2),
        seller_index=st.integers(0, 1),
    )
    def pay(self, hammers: list[int], seller_index: int) -> int:
        sales = [
            sale_make(self.sellers[(seller_index + i) % 2][0], self.buyer, hammer)
            for i, hammer in enumerate(hammers)
        ]
        order = order_charge(order_id=order_for_sale(sale_id=sales[0].pk).pk)
        assert order.status == Order.Status.CAPTURED
        return order.pk

    @rule(order_id=orders)
    def confirm_receipt(self, order_id: int) -> None:
        order = Order.objects.get(pk=order_id)
        if order.status in (Order.Status.CAPTURED, Order.Status.PARTIALLY_REFUNDED):
            order_receipt_confirm(order_id=order_id, user=self.buyer)

    @rule(order_id=orders, share_bps=st.integers(1, 10_000))
    def refund(self, order_id: int, share_bps: int) -> None:
        order = Order.objects.get(pk=order_id)
        if order.status not in (Order.Status.CAPTURED, Order.Status.PARTIALLY_REFUNDED):
            return
        available = order_refundable_minor(order)
        if available <= 0:
            return
        amount = max(1, available * share_bps // 10_000)
        refund_issue(order_id=order_id, actor=self.staff, amount_minor=amount, reason="test")

    @rule(order_id=orders, won=st.booleans())
    def dispute(self, order_id: int, won: bool) -> None:
        order = Order.objects.get(pk=order_id)
        if order.status not in (Order.Status.CAPTURED, Order.Status.PARTIALLY_REFUNDED):
            return
        if Dispute.objects.filter(order=order).exists():
            return
        amount = order.captured_minor - order.refunded_minor
        dispute = self.sandbox.open_dispute(order.stripe_charge_id, amount=amount)
        events_deliver(self.sandbox, "charge.dispute.created")
        janitor_run()
        self.sandbox.close_dispute(dispute["id"], "won" if won else "lost")
        events_deliver(self.sandbox, "charge.dispute.closed")

    @rule()
    def payout(self) -> None:
        payout_run()
        self.sandbox.advance(3 * 86_400)
        for _, account_id in self.sellers:
            events_deliver(self.sandbox, "payout.paid", account=account_id)

    @invariant()
    def books_balance_and_reconcile(self) -> None:
        assert all(total == 0 for total in trial_balance().values())
        report = reconciliation_run()
        assert [d.describe() for d in report.differences] == []

    @invariant()
    def seller_payables_negative_only_through_flagged_disputes(self) -> None:
        for (code, currency), balance in balances_by_account(prefix="seller_payable:").items():
            if balance > 0:  # a liability in debit: the seller owes the platform
                account_id = code.split(":", 1)[1]
                assert SellerBalanceFlag.objects.filter(
                    account_id=account_id, currency=currency
                ).exists(), code

    @invariant()
    def nothing_pending_without_an_open_dispute(self) -> None:
        if not Dispute.objects.filter(outcome=Dispute.Outcome.OPEN).exists():
            assert account_balance(code="disputes:pending", currency="USD") == 0

    @invariant()
    def accounts_have_the_right_kind(self) -> None:
        kinds = dict(LedgerAccount.objects.values_list("code", "kind"))
        for code, kind in kinds.items():
            if code.startswith("seller_payable:"):
                assert kind == "liability"
            if code.startswith(("connected_balance:", "platform:")):
                assert kind == "asset"


def test_ledger_invariants_over_random_money_movements(
    sandbox: Any, settings: Any, db: None
) -> None:
    settings.PAYMENTS_JANITOR_MIN_AGE_SECONDS = 0
    LedgerMachine.api_key = settings.STRIPE_SECRET_KEY
    run_state_machine_as_test(
        LedgerMachine,
        settings=hypothesis_settings(
            max_examples=12,
            stateful_step_count=8,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
