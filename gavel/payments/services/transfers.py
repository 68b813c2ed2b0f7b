"""Separate transfers to sellers (one per seller line, source_transaction = the charge) and
reversals of them (refunds, disputes)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from gavel.common.errors import ConflictError
from gavel.gateway import balance as gateway_balance
from gavel.gateway import transfers as gateway_transfers
from gavel.gateway.errors import GatewayFinalError, GatewayRetryableError
from gavel.gateway.payment_types import StripeTransfer, StripeTransferReversal
from gavel.ledger import accounts
from gavel.ledger.selectors import account_balance
from gavel.ledger.services import Line
from gavel.payments import metrics
from gavel.payments.lock_objects import order_lock, reversal_lock, transfer_lock
from gavel.payments.models import (
    Dispute,
    Order,
    OrderLine,
    SellerBalanceFlag,
    SellerTransfer,
    TransferReversal,
)
from gavel.payments.postings import BalanceLink, credit, debit, money_post
from gavel.payments.services.charging import _order_get_for_buyer
from gavel.payments.services.events import event_record
from gavel.users.models import User

T = SellerTransfer.Status
S = Order.Status
RELEASABLE_STATUSES = (S.CAPTURED, S.PARTIALLY_REFUNDED)
LIVE_TRANSFER = ~Q(status=T.FAILED)


def line_releasable_minor(line: OrderLine) -> int:
    """The seller's net not yet transferred, less what refunds and disputes took from it."""
    return (
        line.seller_net_minor
        - line.refunded_seller_minor
        - line.disputed_seller_minor
        - (line.transferred_minor - line.reversed_minor)
    )


def seller_owed_minor(*, account_id: str, currency: str) -> int:
    """What the platform owes a seller per the ledger (a liability: credit balance)."""
    return -account_balance(code=accounts.seller_payable(account_id).code, currency=currency)


def order_transfers_release(*, order_id: int, reason: str = "holding period over") -> list[int]:
    """Create and send the transfer of each seller line still owed money. Idempotent: a line
    has at most one live sale transfer (database constraint)."""
    created: list[int] = []
    with transaction.atomic():
        order = order_lock(order_id=order_id).get()
        if (
            order.status not in RELEASABLE_STATUSES
            or order.funds_flow != Order.FundsFlow.SEPARATE_TRANSFERS
        ):
            return []
        for line in order.lines.select_related("seller").order_by("pk"):
            amount = line_releasable_minor(line)
            if amount <= 0 or line.transfers.filter(LIVE_TRANSFER, kind="sale").exists():
                continue
            if not _transfers_allowed(line.seller):
                event_record(
                    order=order,
                    type="transfer_waiting",
                    amount_minor=amount,
                    message=f"{line.seller_account_id}: Connect does not allow transfers now",
                    applied=False,
                )
                continue
            transfer = SellerTransfer.objects.create(
                line=line,
                kind=SellerTransfer.Kind.SALE,
                amount_minor=amount,
                currency=order.currency,
                destination_account_id=line.seller_account_id,
            )
            created.append(transfer.pk)
        if created:
            event_record(order=order, type="transfers_released", message=reason)
    for transfer_id in created:
        transfer_execute(transfer_id=transfer_id)
    return created


def _transfers_allowed(seller: User) -> bool:
    """Connect's verdict (transfers capability active); the money waits otherwise."""
    try:
        allowed = import_string("gavel.connect.selectors.seller_transfers_allowed")
    except ImportError:
        return True
    return bool(allowed(user=seller))


def orders_release_due(*, now: datetime | None = None, limit: int = 200) -> int:
    """Release the transfers of orders whose holding period is over (beat)."""
    now = now or timezone.now()
    live_sale_transfers = SellerTransfer.objects.filter(LIVE_TRANSFER, kind="sale")
    lines_owed = (
        OrderLine.objects.exclude(pk__in=live_sale_transfers.values("line_id"))
        .annotate(
            releasable=F("seller_net_minor")
            - F("refunded_seller_minor")
            - F("disputed_seller_minor")
            - F("transferred_minor")
            + F("reversed_minor")
        )
        .filter(releasable__gt=0)
    )
    due = list(
        Order.objects.filter(
            status__in=RELEASABLE_STATUSES,
            funds_flow=Order.FundsFlow.SEPARATE_TRANSFERS,
            transfers_release_after__lte=now,
            pk__in=lines_owed.values("order_id"),
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(len(order_transfers_release(order_id=order_id)) for order_id in due)


def order_receipt_confirm(*, order_id: int, user: User) -> Order:
    """The buyer confirms receipt: sellers are paid now instead of after the holding period."""
    order = _order_get_for_buyer(order_id=order_id, user=user)
    with transaction.atomic():
        order = order_lock(order_id=order_id).get()
        if order.status not in RELEASABLE_STATUSES:
            raise ConflictError(
                f"Receipt cannot be confirmed while the order is {order.status}.",
                code="order_not_paid",
            )
        if order.receipt_confirmed_at is None:
            # Due now: what cannot be transferred yet is picked up by the release scan.
            order.receipt_confirmed_at = order.transfers_release_after = timezone.now()
            order.save(
                update_fields=["receipt_confirmed_at", "transfers_release_after", "updated_at"]
            )
            event_record(order=order, type="receipt_confirmed")
    order_transfers_release(order_id=order_id, reason="buyer confirmed receipt")
    order.refresh_from_db()
    return order


def transfer_execute(*, transfer_id: int) -> SellerTransfer:
    """Send a transfer (or re-send it with its own key) and apply the answer."""
    transfer = SellerTransfer.objects.select_related("line__order").get(pk=transfer_id)
    if transfer.status in (T.SUCCEEDED, T.FAILED):
        return transfer
    order = transfer.line.order
    try:
        stripe_transfer = gateway_transfers.transfer_create(
            operation_id=transfer.pk,
            amount_minor=transfer.amount_minor,
            currency=transfer.currency,
            destination_account_id=transfer.destination_account_id,
            source_charge_id=order.stripe_charge_id or None,
            transfer_group=order.transfer_group,
            metadata={"gavel_transfer_id": str(transfer.pk), "gavel_order_id": str(order.pk)},
        )
    except GatewayRetryableError as error:
        _transfer_unsettled(transfer, error)
        return transfer
    except GatewayFinalError as error:
        _transfer_failed(transfer, error)
        return transfer
    return transfer_succeeded_apply(transfer_id=transfer.pk, stripe_transfer=stripe_transfer)


def _transfer_unsettled(transfer: SellerTransfer, error: GatewayRetryableError) -> None:
    if error.outcome_unknown:
        SellerTransfer.objects.filter(pk=transfer.pk, status=T.CREATING).update(
            status=T.UNKNOWN, error_code=(error.code or "outcome_unknown")[:100]
        )
        metrics.OUTCOMES_UNKNOWN.labels(operation="transfer").inc()
    metrics.TRANSFERS.labels(outcome="retry").inc()


def _transfer_failed(transfer: SellerTransfer, error: GatewayFinalError) -> None:
    with transaction.atomic():
        locked = transfer_lock(transfer_id=transfer.pk).get()
        if locked.status in (T.SUCCEEDED, T.FAILED):
            return
        locked.status = T.FAILED
        locked.error_code = (error.code or "failed")[:100]
        locked.save(update_fields=["status", "error_code", "updated_at"])
        event_record(
            order=transfer.line.order,
            type="transfer_failure",
            amount_minor=transfer.amount_minor,
            message=error.message,
        )
    metrics.TRANSFERS.labels(outcome="failed").inc()


def transfer_succeeded_apply(
    *, transfer_id: int, stripe_transfer: StripeTransfer
) -> SellerTransfer:
    """Record a transfer Stripe made: one entry moving the platform's balance to the seller's
    (a reinstatement after a dispute won also gives back the seller's payable)."""
    order_id = SellerTransfer.objects.filter(pk=transfer_id).values_list(
        "line__order_id", flat=True
    )[0]
    with transaction.atomic():
        order = order_lock(order_id=order_id).get()
        transfer = transfer_lock(transfer_id=transfer_id).select_related("line").get()
        if transfer.status == T.SUCCEEDED:
            return transfer
        assert stripe_transfer.balance_transaction_id
        assert stripe_transfer.destination_payment_id
        links = [
            BalanceLink(
                gateway_balance.balance_transaction_retrieve(
                    balance_transaction_id=stripe_transfer.balance_transaction_id
                )
            ),
            *(
                BalanceLink(bt, transfer.destination_account_id)
                for bt in gateway_balance.balance_transactions_list(
                    account_id=transfer.destination_account_id,
                    source_id=stripe_transfer.destination_payment_id,
                )
            ),
        ]
        lines: list[Line] = []
        if transfer.kind == SellerTransfer.Kind.REINSTATEMENT:
            lines = [
                debit(accounts.DISPUTES_PENDING, transfer.amount_minor, transfer.currency),
                credit(
                    accounts.seller_payable(transfer.destination_account_id),
                    transfer.amount_minor,
                    transfer.currency,
                ),
            ]
            OrderLine.objects.filter(pk=transfer.line_id).update(
                disputed_seller_minor=F("disputed_seller_minor") - transfer.amount_minor
            )
        money_post(
            reference=f"transfer:{transfer.pk}",
            kind=f"transfer_{transfer.kind}",
            lines=lines,
            links=links,
            description=f"Transfer {stripe_transfer.id} to {transfer.destination_account_id}",
        )
        OrderLine.objects.filter(pk=transfer.line_id).update(
            transferred_minor=F("transferred_minor") + transfer.amount_minor
        )
        transfer.status = T.SUCCEEDED
        transfer.stripe_transfer_id = stripe_transfer.id
        transfer.save(update_fields=["status", "stripe_transfer_id", "updated_at"])
        event_record(
            order=order,
            type="transfer_success",
            amount_minor=transfer.amount_minor,
            stripe_object_id=stripe_transfer.id,
        )
    metrics.TRANSFERS.labels(outcome="succeeded").inc()
    return transfer


# ----------------------------------------------------------------------------- reversals


def reversal_execute(*, reversal_id: int) -> TransferReversal:
    reversal = TransferReversal.objects.select_related("transfer").get(pk=reversal_id)
    if reversal.status in (T.SUCCEEDED, T.FAILED):
        return reversal
    assert reversal.transfer.stripe_transfer_id
    try:
        stripe_reversal = gateway_transfers.transfer_reverse(
            operation_id=reversal.pk,
            transfer_id=reversal.transfer.stripe_transfer_id,
            amount_minor=reversal.amount_minor,
            metadata={"gavel_reversal_id": str(reversal.pk)},
        )
    except GatewayRetryableError as error:
        if error.outcome_unknown:
            TransferReversal.objects.filter(pk=reversal.pk, status=T.CREATING).update(
                status=T.UNKNOWN
            )
            metrics.OUTCOMES_UNKNOWN.labels(operation="reversal").inc()
        return reversal
    except GatewayFinalError as error:
        TransferReversal.objects.filter(pk=reversal.pk).exclude(status=T.SUCCEEDED).update(
            status=T.FAILED, error_code=(error.code or "failed")[:100]
        )
        event_record(
            order=reversal.transfer.line.order,
            type="reversal_failure",
            amount_minor=reversal.amount_minor,
            message=error.message,
            applied=False,
        )
        return reversal
    return reversal_succeeded_apply(reversal_id=reversal.pk, stripe_reversal=stripe_reversal)


def reversal_succeeded_apply(
    *, reversal_id: int, stripe_reversal: StripeTransferReversal
) -> TransferReversal:
    """Record a reversal: money back from the seller's balance to the platform's. One for a
    dispute also charges the seller's payable (which may go negative, and is then flagged)."""
    order_id = TransferReversal.objects.filter(pk=reversal_id).values_list(
        "transfer__line__order_id", flat=True
    )[0]
    with transaction.atomic():
        order = order_lock(order_id=order_id).get()
        reversal = reversal_lock(reversal_id=reversal_id).select_related("transfer").get()
        if reversal.status == T.SUCCEEDED:
            return reversal
        account_id = reversal.transfer.destination_account_id
        currency = reversal.currency
        assert stripe_reversal.balance_transaction_id
        links = [
            BalanceLink(
                gateway_balance.balance_transaction_retrieve(
                    balance_transaction_id=stripe_reversal.balance_transaction_id
                )
            )
        ]
        if stripe_reversal.destination_payment_refund_id:
            links += [
                BalanceLink(bt, account_id)
                for bt in gateway_balance.balance_transactions_list(
                    account_id=account_id,
                    source_id=stripe_reversal.destination_payment_refund_id,
                )
            ]
        lines: list[Line] = []
        if reversal.dispute_id is not None:
            lines = [
                debit(accounts.seller_payable(account_id), reversal.amount_minor, currency),
                credit(accounts.DISPUTES_PENDING, reversal.amount_minor, currency),
            ]
            OrderLine.objects.filter(pk=reversal.transfer.line_id).update(
                disputed_seller_minor=F("disputed_seller_minor") + reversal.amount_minor
            )
            Dispute.objects.filter(pk=reversal.dispute_id).update(
                recovered_from_sellers_minor=F("recovered_from_sellers_minor")
                + reversal.amount_minor
            )
        money_post(
            reference=f"reversal:{reversal.pk}",
            kind="transfer_reversal_dispute" if reversal.dispute_id else "transfer_reversal_refund",
            lines=lines,
            links=links,
            description=f"Reversal {stripe_reversal.id} of {reversal.transfer.stripe_transfer_id}",
        )
        OrderLine.objects.filter(pk=reversal.transfer.line_id).update(
            reversed_minor=F("reversed_minor") + reversal.amount_minor
        )
        reversal.status = T.SUCCEEDED
        reversal.stripe_reversal_id = stripe_reversal.id
        reversal.save(update_fields=["status", "stripe_reversal_id", "updated_at"])
        event_record(
            order=order,
            type="reversal_success",
            amount_minor=reversal.amount_minor,
            stripe_object_id=stripe_reversal.id,
        )
        if reversal.dispute_id is not None:
            seller_balance_flag_if_negative(
                account_id=account_id, currency=currency, dispute_id=reversal.dispute_id
            )
    return reversal


def seller_balance_flag_if_negative(*, account_id: str, currency: str, dispute_id: int) -> bool:
    owed = seller_owed_minor(account_id=account_id, currency=currency)
    if owed >= 0:
        return False
    SellerBalanceFlag.objects.create(
        account_id=account_id, currency=currency, balance_minor=owed, dispute_id=dispute_id
    )
    metrics.NEGATIVE_SELLER_BALANCES.inc()
    return True
