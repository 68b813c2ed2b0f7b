"""Refunds to buyers: full or partial, before or after the sellers' transfers.

Policy (docs/payments.md, "Refunds"): a refund is split across lines in proportion to what
each has left to refund; within a line across the buyer's premium (if PAYMENTS_REFUND_
BUYERS_PREMIUM) and the hammer price, and the hammer part across the seller's net and the
commission. The seller's part is taken from their payable: before the transfer by paying them
less, after it by reversing their transfer (never below zero: what cannot be recovered is
absorbed by the platform). Destination charges reverse the transfer and refund the
application fee through Stripe, in proportion.

A refund Stripe fails after Gavel booked it (``refund_failed_apply``) is unwound: the money
back in the balance is posted against what booking took, the lines' refunded totals and the
order's status go back, and each seller whose transfer was reversed for it is transferred that
share again (a ``refund_failed`` transfer).
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet, Sum

from gavel.common.errors import ConflictError, NotFoundError, ServiceError
from gavel.common.money import MoneyError
from gavel.gateway import balance as gateway_balance
from gavel.gateway import payment_intents as gateway_intents
from gavel.gateway import refunds as gateway_refunds
from gavel.gateway import transfers as gateway_transfers
from gavel.gateway.errors import GatewayFinalError, GatewayRetryableError
from gavel.gateway.payment_types import StripeRefund
from gavel.ledger import accounts
from gavel.ledger.services import Line
from gavel.payments import metrics
from gavel.payments.fees import LineRefundable, refund_allocate, refundable_minor
from gavel.payments.lock_objects import order_lock, refund_lock
from gavel.payments.models import Order, OrderLine, Refund, SellerTransfer, TransferReversal
from gavel.payments.postings import (
    BalanceLink,
    credit,
    debit,
    linked_balance_transaction_ids,
    money_post,
)
from gavel.payments.services.charging import _order_get_for_buyer
from gavel.payments.services.events import audit_record, event_record
from gavel.payments.services.transfers import (
    _transfers_allowed,
    line_releasable_minor,
    reversal_execute,
    seller_owed_minor,
    transfer_execute,
)
from gavel.payments.states import Operation, RefundOperation, order_transition, refund_transition
from gavel.users.models import User

R = Refund.Status
S = Order.Status
IN_FLIGHT = (R.CREATING, R.UNKNOWN)
# Stripe refund statuses that mean the money never left (or came back).
STRIPE_REFUND_FAILED = ("failed", "canceled")
REFUNDABLE_STATUSES = (S.CAPTURED, S.PARTIALLY_REFUNDED)
# A refund sent before a dispute that settles after it opened: its money is booked, the order
# keeps its dispute status (no refund move leaves one); a won dispute returns it to the status
# its refunded total gives (``_dispute_won``).
FROZEN_STATUSES = (S.DISPUTED, S.DISPUTE_LOST)


def line_refundable(line: OrderLine) -> LineRefundable:
    """What is left on a line. A seller share the platform absorbed (not recoverable from
    the seller) was refunded all the same: it is not left to refund."""
    return LineRefundable(
        seller_minor=line.seller_net_minor
        - line.refunded_seller_minor
        - line.refunded_absorbed_minor
        - line.disputed_seller_minor,
        commission_minor=line.commission_minor - line.refunded_commission_minor,
        premium_minor=line.buyers_premium_minor
        + line.buyer_fee_minor
        - line.refunded_premium_minor,
    )


def order_refundable_minor(order: Order) -> int:
    """What may still be refunded, by policy (absorbed shares count as refunded)."""
    policy = refundable_minor(
        [line_refundable(line) for line in order.lines.order_by("pk")],
        premium_refundable=settings.PAYMENTS_REFUND_BUYERS_PREMIUM,
    )
    return max(0, min(policy, order.captured_minor - order.refunded_minor))


def _refund_check(order: Order, amount_minor: int) -> None:
    if order.status not in REFUNDABLE_STATUSES:
        raise ConflictError(
            f"This order cannot be refunded while it is {order.status}.",
            code="order_not_refundable",
        )
    if amount_minor <= 0:
        raise ServiceError(
            "The amount must be positive.",
            code="amount_invalid",
            fields={"amount_minor": ["Must be positive."]},
        )
    if order.refunds.filter(status__in=IN_FLIGHT).exists():
        raise ConflictError("A refund of this order is in progress.", code="refund_in_progress")
    if SellerTransfer.objects.filter(
        line__order=order,
        status__in=(SellerTransfer.Status.CREATING, SellerTransfer.Status.UNKNOWN),
    ).exists():
        raise ConflictError("A transfer of this order is in progress.", code="transfer_in_progress")
    available = order_refundable_minor(order)
    if amount_minor > available:
        raise ServiceError(
            f"At most {available} can be refunded.",
            code="amount_too_large",
            fields={"amount_minor": [f"At most {available}."]},
        )


def _allocation(order: Order, amount_minor: int) -> list[dict[str, int]]:
    lines = list(order.lines.order_by("pk"))
    try:
        parts = refund_allocate(
            amount_minor,
            [line_refundable(line) for line in lines],
            premium_refundable=settings.PAYMENTS_REFUND_BUYERS_PREMIUM,
        )
    except MoneyError as error:
        raise ServiceError(str(error), code="amount_too_large") from error
    return [
        {
            "line_id": line.pk,
            "seller_minor": part.seller_minor,
            "commission_minor": part.commission_minor,
            "premium_minor": part.premium_minor,
        }
        for line, part in zip(lines, parts, strict=True)
        if part.total_minor
    ]


def refund_request(*, order_id: int, user: User, amount_minor: int, reason: str) -> Refund:
    """A buyer asks for a refund; staff approve or reject it."""
    _order_get_for_buyer(order_id=order_id, user=user)
    with transaction.atomic():
        order = order_lock(order_id=order_id).get()
        _refund_check(order, amount_minor)
        if order.refunds.filter(status=R.REQUESTED).exists():
            raise ConflictError("A refund request is already open.", code="refund_request_open")
        refund = Refund.objects.create(
            order=order,
            status=R.REQUESTED,
            amount_minor=amount_minor,
            currency=order.currency,
            reason=reason[:500],
            requested_by=user,
        )
        event_record(order=order, type="refund_requested", amount_minor=amount_minor)
    return refund


def refund_issue(*, order_id: int, actor: User, amount_minor: int, reason: str) -> Refund:
    """Staff refund an order (audited) and send it to Stripe."""
    with transaction.atomic():
        order = order_lock(order_id=order_id).first()
        if order is None:
            raise NotFoundError("No such order.", code="order_not_found")
        _refund_check(order, amount_minor)
        refund = Refund.objects.create(
            order=order,
            status=R.CREATING,
            amount_minor=amount_minor,
            currency=order.currency,
            reason=reason[:500],
            requested_by=actor,
            approved_by=actor,
            allocation=_allocation(order, amount_minor),
        )
        audit_record(
            actor=actor,
            action="refund_issue",
            object_type="order",
            object_id=order.pk,
            data={"refund_id": refund.pk, "amount_minor": amount_minor, "reason": reason},
        )
    return refund_execute(refund_id=refund.pk)


def refund_approve(*, refund_id: int, actor: User) -> Refund:
    with transaction.atomic():
        order_id = _refund_order_id(refund_id)
        order = order_lock(order_id=order_id).get()
        refund = refund_lock(refund_id=refund_id).get()
        if refund.status != R.REQUESTED:
            raise ConflictError(
                "This refund is not awaiting approval.", code="refund_not_requested"
            )
        _refund_check(order, refund.amount_minor)
        refund_transition(refund=refund, operation=RefundOperation.APPROVE, to_status=R.CREATING)
        refund.approved_by = actor
        refund.allocation = _allocation(order, refund.amount_minor)
        refund.save(update_fields=["approved_by", "allocation", "updated_at"])
        audit_record(
            actor=actor,
            action="refund_approve",
            object_type="refund",
            object_id=refund.pk,
            data={"order_id": order.pk, "amount_minor": refund.amount_minor},
        )
    return refund_execute(refund_id=refund.pk)


def refund_reject(*, refund_id: int, actor: User, reason: str) -> Refund:
    with transaction.atomic():
        order_lock(order_id=_refund_order_id(refund_id)).get()
        refund = refund_lock(refund_id=refund_id).get()
        if refund.status != R.REQUESTED:
            raise ConflictError(
                "This refund is not awaiting approval.", code="refund_not_requested"
            )
        refund_transition(
            refund=refund, operation=RefundOperation.REJECT, to_status=R.REJECTED, reason=reason
        )
        refund.approved_by = actor
        refund.save(update_fields=["approved_by", "updated_at"])
        audit_record(
            actor=actor,
            action="refund_reject",
            object_type="refund",
            object_id=refund.pk,
            data={"reason": reason},
        )
        event_record(order=refund.order, type="refund_rejected", message=reason)
    return refund


def _refund_order_id(refund_id: int) -> int:
    order_id = Refund.objects.filter(pk=refund_id).values_list("order_id", flat=True).first()
    if order_id is None:
        raise NotFoundError("No such refund.", code="refund_not_found")
    return order_id


def refund_execute(*, refund_id: int) -> Refund:
    """Send a refund (or re-send it with its own key) and apply the answer."""
    refund = Refund.objects.select_related("order").get(pk=refund_id)
    if refund.status not in IN_FLIGHT:
        return refund
    order = refund.order
    destination = order.funds_flow == Order.FundsFlow.DESTINATION_CHARGE
    try:
        stripe_refund = gateway_refunds.refund_create(
            operation_id=refund.pk,
            charge_id=order.stripe_charge_id,
            amount_minor=refund.amount_minor,
            reverse_transfer=destination,
            refund_application_fee=destination and settings.PAYMENTS_REFUND_APPLICATION_FEE,
            metadata={"gavel_refund_id": str(refund.pk), "gavel_order_id": str(order.pk)},
        )
    except GatewayRetryableError as error:
        if error.outcome_unknown:
            with transaction.atomic():
                locked = refund_lock(refund_id=refund.pk).get()
                if locked.status == R.CREATING:
                    refund_transition(
                        refund=locked,
                        operation=RefundOperation.OUTCOME_UNKNOWN,
                        to_status=R.UNKNOWN,
                        reason=error.code or "",
                    )
            metrics.OUTCOMES_UNKNOWN.labels(operation="refund").inc()
        metrics.REFUNDS.labels(outcome="retry").inc()
        refund.refresh_from_db()
        return refund
    except GatewayFinalError as error:
        with transaction.atomic():
            locked = refund_lock(refund_id=refund.pk).get()
            if locked.status in IN_FLIGHT:
                refund_transition(
                    refund=locked,
                    operation=RefundOperation.FAIL,
                    to_status=R.FAILED,
                    reason=error.message,
                )
                locked.error_code = (error.code or "failed")[:100]
                locked.save(update_fields=["error_code", "updated_at"])
        event_record(order=order, type="refund_failure", message=error.message, applied=False)
        metrics.REFUNDS.labels(outcome="failed").inc()
        refund.refresh_from_db()
        return refund
    return refund_succeeded_apply(refund_id=refund.pk, stripe_refund=stripe_refund)


def refund_succeeded_apply(*, refund_id: int, stripe_refund: StripeRefund) -> Refund:
    """Book a refund Stripe made (our call's answer, or the janitor's re-read). A refund
    Stripe reports failed or canceled is never booked: it is marked failed instead."""
    if stripe_refund.status in STRIPE_REFUND_FAILED:
        return refund_failed_apply(refund_id=refund_id, stripe_refund=stripe_refund)
    order_id = _refund_order_id(refund_id)
    reversal_ids: list[int] = []
    with transaction.atomic():
        order = order_lock(order_id=order_id).get()
        refund = refund_lock(refund_id=refund_id).get()
        if refund.status == R.SUCCEEDED:
            return refund
        assert stripe_refund.balance_transaction_id
        refund_bt = gateway_balance.balance_transaction_retrieve(
            balance_transaction_id=stripe_refund.balance_transaction_id
        )
        if order.funds_flow == Order.FundsFlow.DESTINATION_CHARGE:
            lines, links, booked = _destination_refund_postings(order, refund, stripe_refund)
        else:
            lines, reversal_ids, booked = _separate_refund_postings(order, refund)
            links = []
        money_post(
            reference=f"refund:{refund.pk}",
            kind="refund",
            lines=lines,
            links=[BalanceLink(refund_bt), *links],
            description=f"Refund {stripe_refund.id} of order {order.pk}",
        )
        refund_transition(refund=refund, operation=RefundOperation.SUCCEED, to_status=R.SUCCEEDED)
        refund.stripe_refund_id = stripe_refund.id
        refund.booked_lines = booked
        refund.save(update_fields=["stripe_refund_id", "booked_lines", "updated_at"])
        Order.objects.filter(pk=order.pk).update(
            refunded_minor=F("refunded_minor") + refund.amount_minor
        )
        order.refresh_from_db()
        if order.status not in FROZEN_STATUSES:
            to_status = (
                S.REFUNDED if order.refunded_minor >= order.captured_minor else S.PARTIALLY_REFUNDED
            )
            order_transition(
                order=order, operation=Operation.REFUND, to_status=to_status, reason=refund.reason
            )
        event_record(
            order=order,
            type="refund_success",
            amount_minor=refund.amount_minor,
            stripe_object_id=stripe_refund.id,
        )
    metrics.REFUNDS.labels(outcome="succeeded").inc()
    for reversal_id in reversal_ids:
        reversal_execute(reversal_id=reversal_id)
    return refund


def refund_failed_apply(
    *,
    refund_id: int,
    stripe_refund: StripeRefund,
    stripe_event_id: str = "",
    failure_reason: str = "",
) -> Refund:
    """Stripe reports the refund failed (or canceled): the money came back to the balance.

    A refund still in flight on our side is marked failed; its balance transactions (the
    refund and its refund_failure, which cancel out) are linked in one entry so the books
    reconcile. A refund we booked as succeeded is unwound (``_booked_refund_unwind``). Anything
    else (a replay, a refund already failed) is recorded and changes nothing.
    """
    order_id = _refund_order_id(refund_id)
    transfer_ids: list[int] = []
    with transaction.atomic():
        order = order_lock(order_id=order_id).get()
        refund = refund_lock(refund_id=refund_id).get()
        if refund.status == R.SUCCEEDED and refund.booked_lines:
            transfer_ids = _booked_refund_unwind(
                order, refund, stripe_refund, stripe_event_id, failure_reason
            )
            metrics.REFUNDS.labels(outcome="failed").inc()
        elif refund.status not in IN_FLIGHT:
            event_record(
                order=order,
                type="refund_failed_after_apply"
                if refund.status == R.SUCCEEDED
                else "refund_failed",
                amount_minor=stripe_refund.amount_minor,
                stripe_object_id=stripe_refund.id,
                stripe_event_id=stripe_event_id,
                applied=False,
                message=f"our refund {refund.pk} is {refund.status}"
                + (
                    " (booked before its lines were recorded)"
                    if refund.status == R.SUCCEEDED
                    else ""
                ),
            )
        else:
            _in_flight_refund_fail(order, refund, stripe_refund, stripe_event_id, failure_reason)
            metrics.REFUNDS.labels(outcome="failed").inc()
    for transfer_id in transfer_ids:
        transfer_execute(transfer_id=transfer_id)
    return refund


def _in_flight_refund_fail(
    order: Order,
    refund: Refund,
    stripe_refund: StripeRefund,
    stripe_event_id: str,
    failure_reason: str,
) -> None:
    linked = linked_balance_transaction_ids(source_id=stripe_refund.id)
    links = [
        BalanceLink(bt)
        for bt in gateway_balance.balance_transactions_list(source_id=stripe_refund.id)
        if bt.id not in linked
    ]
    if links and sum(link.transaction.net_minor for link in links) == 0:
        money_post(
            reference=f"refund:{refund.pk}:failed",
            kind="refund_failed",
            lines=[],
            links=links,
            description=f"Refund {stripe_refund.id} of order {order.pk} failed",
        )
    refund_transition(
        refund=refund,
        operation=RefundOperation.FAIL,
        to_status=R.FAILED,
        reason=failure_reason or stripe_refund.status,
    )
    refund.stripe_refund_id = stripe_refund.id
    refund.error_code = stripe_refund.status[:100]
    refund.failure_reason = failure_reason[:100]
    refund.save(update_fields=["stripe_refund_id", "error_code", "failure_reason", "updated_at"])
    event_record(
        order=order,
        type="refund_failure",
        amount_minor=stripe_refund.amount_minor,
        stripe_object_id=stripe_refund.id,
        stripe_event_id=stripe_event_id,
    )


def _booked_refund_unwind(
    order: Order,
    refund: Refund,
    stripe_refund: StripeRefund,
    stripe_event_id: str,
    failure_reason: str,
) -> list[int]:
    """Undo a booked refund Stripe failed (order and refund locked): post the refund_failure
    balance transaction against everything booking took (the seller payables, commission,
    premium, absorbed share), give the lines' refunded totals and ``refunded_minor`` back, move
    the order back (a frozen order keeps its status) and the refund to failed. Returns the
    ``refund_failed`` transfers to send: each seller's share this refund took from a transfer
    already made goes back to them. The entry's reference and its links are unique: a replay
    posts nothing."""
    currency = order.currency
    linked = linked_balance_transaction_ids(source_id=stripe_refund.id)
    links = [
        BalanceLink(bt)
        for bt in gateway_balance.balance_transactions_list(source_id=stripe_refund.id)
        if bt.type == "refund_failure" and bt.id not in linked
    ]
    returned = sum(link.transaction.net_minor for link in links)
    if returned != refund.amount_minor:
        # Stripe has not booked the money back (yet): nothing to post against; not applied.
        event_record(
            order=order,
            type="refund_failed_after_apply",
            amount_minor=stripe_refund.amount_minor,
            stripe_object_id=stripe_refund.id,
            stripe_event_id=stripe_event_id,
            applied=False,
            message=f"refund_failure balance transactions of {returned}, not {refund.amount_minor}",
        )
        return []
    lines: list[Line] = []
    totals = {"commission": 0, "premium": 0, "absorbed": 0}
    for booked in refund.booked_lines:
        account = OrderLine.objects.values_list("seller_account_id", flat=True).get(
            pk=booked["line_id"]
        )
        lines.append(credit(accounts.seller_payable(account), booked["seller_minor"], currency))
        OrderLine.objects.filter(pk=booked["line_id"]).update(
            refunded_seller_minor=F("refunded_seller_minor") - booked["seller_minor"],
            refunded_absorbed_minor=F("refunded_absorbed_minor") - booked["absorbed_minor"],
            refunded_commission_minor=F("refunded_commission_minor") - booked["commission_minor"],
            refunded_premium_minor=F("refunded_premium_minor") - booked["premium_minor"],
        )
        totals["commission"] += booked["commission_minor"]
        totals["premium"] += booked["premium_minor"]
        totals["absorbed"] += booked["absorbed_minor"]
    lines += [
        credit(accounts.COMMISSION_REVENUE, totals["commission"], currency),
        credit(accounts.BUYERS_PREMIUM_REVENUE, totals["premium"], currency),
        credit(accounts.REFUNDS_ABSORBED, totals["absorbed"], currency),
    ]
    money_post(
        reference=f"refund:{refund.pk}:failed",
        kind="refund_failed_after_booking",
        lines=lines,
        links=links,
        description=f"Refund {stripe_refund.id} of order {order.pk} failed after it was booked",
    )
    Order.objects.filter(pk=order.pk).update(
        refunded_minor=F("refunded_minor") - refund.amount_minor
    )
    order.refresh_from_db()
    reason = f"refund {refund.pk} failed: {failure_reason or stripe_refund.status}"
    if order.status in (S.PARTIALLY_REFUNDED, S.REFUNDED):
        order_transition(
            order=order,
            operation=Operation.REFUND_FAIL,
            to_status=S.PARTIALLY_REFUNDED if order.refunded_minor else S.CAPTURED,
            reason=reason,
        )
    refund_transition(
        refund=refund,
        operation=RefundOperation.FAIL_AFTER_SUCCESS,
        to_status=R.FAILED,
        reason=reason,
    )
    refund.error_code = stripe_refund.status[:100]
    refund.failure_reason = failure_reason[:100]
    refund.save(update_fields=["error_code", "failure_reason", "updated_at"])
    event_record(
        order=order,
        type="refund_failed_after_apply",
        amount_minor=refund.amount_minor,
        stripe_object_id=stripe_refund.id,
        stripe_event_id=stripe_event_id,
        message=reason,
    )
    return _seller_shares_give_back(order, refund)


def _seller_shares_give_back(order: Order, refund: Refund) -> list[int]:
    """For each line this refund took a seller share from after its sale transfer was made
    (a reversal, or a smaller transfer), a ``refund_failed`` transfer of what the line owes
    the seller again, at most that share. A line not transferred yet needs nothing (its
    release pays the restored net). Not for destination charges (Stripe keeps the transfer
    reversed), nor while a dispute freezes the order, a transfer of the line is in flight or
    Connect refuses transfers: the share then stays owed in the seller's payable, recorded as
    ``transfer_waiting`` for staff."""
    created: list[int] = []
    for booked in refund.booked_lines:
        line = OrderLine.objects.select_related("seller").get(pk=booked["line_id"])
        transfers = line.transfers.exclude(status=SellerTransfer.Status.FAILED)
        if order.funds_flow != Order.FundsFlow.SEPARATE_TRANSFERS:
            amount, waiting = booked["seller_minor"], "destination charge"
        elif not transfers.filter(
            kind=SellerTransfer.Kind.SALE, status=SellerTransfer.Status.SUCCEEDED
        ).exists():
            continue
        else:
            amount = min(booked["seller_minor"], line_releasable_minor(line))
            waiting = _give_back_blocked(order, line, transfers)
        if amount <= 0:
            continue
        if waiting:
            event_record(
                order=order,
                type="transfer_waiting",
                amount_minor=amount,
                applied=False,
                message=f"{line.seller_account_id}: share of failed refund {refund.pk} left owed"
                f" in the seller payable ({waiting})",
            )
            continue
        created.append(
            SellerTransfer.objects.create(
                line=line,
                kind=SellerTransfer.Kind.REFUND_FAILED,
                amount_minor=amount,
                currency=order.currency,
                destination_account_id=line.seller_account_id,
            ).pk
        )
    return created


def _give_back_blocked(order: Order, line: OrderLine, transfers: QuerySet[SellerTransfer]) -> str:
    """Why a seller's share cannot be transferred back now ("" when it can)."""
    if order.status in FROZEN_STATUSES:
        return f"order {order.status}"
    if transfers.filter(
        status__in=(SellerTransfer.Status.CREATING, SellerTransfer.Status.UNKNOWN)
    ).exists():
        return "a transfer of this line is in flight"
    if not _transfers_allowed(line.seller):
        return "Connect does not allow transfers now"
    return ""


def _separate_refund_postings(
    order: Order, refund: Refund
) -> tuple[list[Line], list[int], list[dict[str, int]]]:
    currency = order.currency
    lines: list[Line] = []
    reversal_ids: list[int] = []
    booked: list[dict[str, int]] = []
    owed_by_account: dict[str, int] = {}
    totals = {"commission": 0, "premium": 0, "absorbed": 0}
    for part in refund.allocation:
        line = OrderLine.objects.get(pk=part["line_id"])
        seller_part = part["seller_minor"]
        transfer = (
            line.transfers.filter(
                kind=SellerTransfer.Kind.SALE, status=SellerTransfer.Status.SUCCEEDED
            )
            .order_by("pk")
            .first()
        )
        absorbed = 0
        if transfer is not None and seller_part:
            account = line.seller_account_id
            if account not in owed_by_account:
                owed_by_account[account] = seller_owed_minor(account_id=account, currency=currency)
            reversed_so_far = (
                transfer.reversals.exclude(status=TransferReversal.Status.FAILED).aggregate(
                    total=Sum("amount_minor")
                )["total"]
                or 0
            )
            recoverable = max(
                0,
                min(seller_part, transfer.amount_minor - reversed_so_far, owed_by_account[account]),
            )
            owed_by_account[account] -= recoverable
            absorbed = seller_part - recoverable
            if recoverable:
                reversal = TransferReversal.objects.create(
                    transfer=transfer,
                    refund=refund,
                    amount_minor=recoverable,
                    currency=currency,
                )
                reversal_ids.append(reversal.pk)
        charged = seller_part - absorbed
        if charged:
            lines.append(debit(accounts.seller_payable(line.seller_account_id), charged, currency))
        OrderLine.objects.filter(pk=line.pk).update(
            refunded_seller_minor=F("refunded_seller_minor") + charged,
            refunded_absorbed_minor=F("refunded_absorbed_minor") + absorbed,
            refunded_commission_minor=F("refunded_commission_minor") + part["commission_minor"],
            refunded_premium_minor=F("refunded_premium_minor") + part["premium_minor"],
        )
        booked.append(
            _booked_line(
                line.pk, charged, absorbed, part["commission_minor"], part["premium_minor"]
            )
        )
        totals["commission"] += part["commission_minor"]
        totals["premium"] += part["premium_minor"]
        totals["absorbed"] += absorbed
    lines += [
        debit(accounts.COMMISSION_REVENUE, totals["commission"], currency),
        debit(accounts.BUYERS_PREMIUM_REVENUE, totals["premium"], currency),
        debit(accounts.REFUNDS_ABSORBED, totals["absorbed"], currency),
    ]
    return lines, reversal_ids, booked


def _booked_line(
    line_id: int, seller_minor: int, absorbed_minor: int, commission_minor: int, premium_minor: int
) -> dict[str, int]:
    """What booking a refund took from one line's running totals (``Refund.booked_lines``)."""
    return {
        "line_id": line_id,
        "seller_minor": seller_minor,
        "absorbed_minor": absorbed_minor,
        "commission_minor": commission_minor,
        "premium_minor": premium_minor,
    }


def _destination_refund_postings(
    order: Order, refund: Refund, stripe_refund: StripeRefund
) -> tuple[list[Line], list[BalanceLink], list[dict[str, int]]]:
    currency = order.currency
    line = order.lines.get()
    account = line.seller_account_id
    links: list[BalanceLink] = []
    reversed_minor = 0
    if stripe_refund.transfer_reversal_id:
        transfer = line.transfers.get(kind=SellerTransfer.Kind.DESTINATION)
        assert transfer.stripe_transfer_id
        reversal = gateway_transfers.transfer_reversal_retrieve(
            transfer_id=transfer.stripe_transfer_id, reversal_id=stripe_refund.transfer_reversal_id
        )
        reversed_minor = reversal.amount_minor
        assert reversal.balance_transaction_id
        links.append(
            BalanceLink(
                gateway_balance.balance_transaction_retrieve(
                    balance_transaction_id=reversal.balance_transaction_id
                )
            )
        )
        if reversal.destination_payment_refund_id:
            links += [
                BalanceLink(bt, account)
                for bt in gateway_balance.balance_transactions_list(
                    account_id=account, source_id=reversal.destination_payment_refund_id
                )
            ]
    fee_refunded = 0
    charge = gateway_intents.charge_retrieve(charge_id=order.stripe_charge_id)
    if charge.application_fee_id:
        for fee_refund_id in gateway_refunds.application_fee_refund_ids(
            application_fee_id=charge.application_fee_id
        ):
            if linked_balance_transaction_ids(source_id=fee_refund_id):
                continue
            for bt in gateway_balance.balance_transactions_list(source_id=fee_refund_id):
                links.append(BalanceLink(bt))
                fee_refunded += -bt.net_minor
            links += [
                BalanceLink(bt, account)
                for bt in gateway_balance.balance_transactions_list(
                    account_id=account, source_id=fee_refund_id
                )
            ]
    seller_loss = reversed_minor - fee_refunded
    commission = sum(part["commission_minor"] for part in refund.allocation)
    premium = sum(part["premium_minor"] for part in refund.allocation)
    absorbed = refund.amount_minor - seller_loss - commission - premium
    OrderLine.objects.filter(pk=line.pk).update(
        refunded_seller_minor=F("refunded_seller_minor") + seller_loss,
        refunded_commission_minor=F("refunded_commission_minor") + commission,
        refunded_premium_minor=F("refunded_premium_minor") + premium,
        refunded_absorbed_minor=F("refunded_absorbed_minor") + absorbed,
        reversed_minor=F("reversed_minor") + reversed_minor,
    )
    lines = [
        debit(accounts.seller_payable(account), seller_loss, currency),
        debit(accounts.COMMISSION_REVENUE, commission, currency),
        debit(accounts.BUYERS_PREMIUM_REVENUE, premium, currency),
        debit(accounts.REFUNDS_ABSORBED, absorbed, currency),
    ]
    return lines, links, [_booked_line(line.pk, seller_loss, absorbed, commission, premium)]
