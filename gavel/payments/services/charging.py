"""Charging the buyer: one PaymentIntent per attempt, applied to the order's state machine.

A call to Stripe happens outside any transaction that could roll back its record: the
attempt row is committed first (its id is the idempotency key), the outcome is applied after.
An outcome that cannot be known (a timeout after Stripe applied the request, a 5xx) leaves the
attempt ``unknown`` for the janitor, which re-reads it; the same key can never charge twice.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from gavel.common.errors import ConflictError, NotFoundError, ServiceError
from gavel.gateway import balance as gateway_balance
from gavel.gateway import payment_intents as gateway_intents
from gavel.gateway import transfers as gateway_transfers
from gavel.gateway.errors import GatewayCardDeclined, GatewayFinalError, GatewayRetryableError
from gavel.gateway.payment_types import StripeBalanceTransaction, StripePaymentIntent
from gavel.ledger import accounts
from gavel.ledger.services import Line
from gavel.payments import metrics
from gavel.payments.lock_objects import attempt_lock, order_lock
from gavel.payments.models import Hold, Order, OrderLine, PaymentAttempt, SellerTransfer
from gavel.payments.postings import BalanceLink, credit, debit, money_post
from gavel.payments.sellers import buyer_payment_method
from gavel.payments.services.events import event_record
from gavel.payments.states import (
    PAYABLE_STATUSES,
    Operation,
    order_transition,
    order_transition_allowed,
)
from gavel.users.models import User

logger = logging.getLogger(__name__)

A = PaymentAttempt.Status
S = Order.Status

OPEN_ATTEMPT_STATUSES = (A.CREATING, A.UNKNOWN, A.PROCESSING)
ATTEMPT_TERMINAL = frozenset({A.SUCCEEDED, A.CANCELED, A.FAILED})
# Which attempt statuses may follow which (anything not terminal may move; requires_capture
# only to its ends). A late event naming an earlier status is recorded, not applied.
ATTEMPT_AFTER_CAPTURE_HOLD = frozenset({A.SUCCEEDED, A.CANCELED})

INTENT_STATUS = {
    "requires_payment_method": A.REQUIRES_PAYMENT_METHOD,
    "requires_confirmation": A.PROCESSING,
    "requires_action": A.REQUIRES_ACTION,
    "processing": A.PROCESSING,
    "requires_capture": A.REQUIRES_CAPTURE,
    "succeeded": A.SUCCEEDED,
    "canceled": A.CANCELED,
}


def _attempt_move_allowed(current: str, new: str) -> bool:
    if current == new:
        return False
    if current in ATTEMPT_TERMINAL:
        return False
    if current == A.REQUIRES_CAPTURE:
        return new in ATTEMPT_AFTER_CAPTURE_HOLD
    return True


def _order_get_for_buyer(*, order_id: int, user: User) -> Order:
    order = Order.objects.filter(pk=order_id).first()
    if order is None or order.buyer_id != user.pk:
        raise NotFoundError("No such order.", code="order_not_found")
    return order


# ----------------------------------------------------------------------------- starting


def _authorized_hold_for(order: Order) -> Hold | None:
    """A hold that can pay the whole order: single-lot auction orders only."""
    lines = list(order.lines.select_related("sale"))
    if len(lines) != 1 or lines[0].sale is None:
        return None
    return (
        Hold.objects.filter(
            auction_id=lines[0].sale.auction_id,
            bidder_id=order.buyer_id,
            status=Hold.Status.AUTHORIZED,
            amount_minor__gte=order.total_minor,
            currency=order.currency,
        )
        .order_by("-pk")
        .first()
    )


def order_charge(*, order_id: int) -> Order:
    """Charge a new order off-session with the buyer's saved payment method (the handoff).

    Idempotent: an order already paid, or with an attempt in flight, is not charged again
    (an attempt in flight is re-sent with its own key, which Stripe answers from memory).
    """
    with transaction.atomic():
        order = order_lock(order_id=order_id).first()
        if order is None:
            raise NotFoundError("No such order.", code="order_not_found")
        open_attempt = order.attempts.filter(status__in=OPEN_ATTEMPT_STATUSES).first()
        if open_attempt is None:
            if order.status != S.PENDING:
                return order
            hold = _authorized_hold_for(order)
            if hold is not None:
                hold_attempt = hold.attempt
                PaymentAttempt.objects.filter(pk=hold_attempt.pk).update(order=order)
                Hold.objects.filter(pk=hold.pk).update(order=order)
                hold_id: int | None = hold.pk
            else:
                hold_id = None
                try:
                    method = buyer_payment_method(user=order.buyer)
                except ServiceError:
                    _decline_apply(
                        order, reason="no verified payment method", code="payment_method_required"
                    )
                    return order
                open_attempt = _attempt_new(order, method.customer_id, method.payment_method_id)
        else:
            hold_id = None
    if hold_id is not None:
        from gavel.payments.services.holds import hold_capture_for_order

        hold_capture_for_order(hold_id=hold_id, order_id=order_id)
    elif open_attempt is not None:
        attempt_send(attempt_id=open_attempt.pk)
    order.refresh_from_db()
    return order


def _attempt_new(order: Order, customer_id: str, payment_method_id: str) -> PaymentAttempt:
    return PaymentAttempt.objects.create(
        order=order,
        purpose=PaymentAttempt.Purpose.ORDER,
        amount_minor=order.total_minor,
        currency=order.currency,
        stripe_customer_id=customer_id,
        stripe_payment_method_id=payment_method_id,
    )


def _decline_apply(order: Order, *, reason: str, code: str) -> None:
    order_transition(order=order, operation=Operation.DECLINE, to_status=S.FAILED, reason=reason)
    event_record(order=order, type="charge_not_attempted", message=f"{code}: {reason}")
    _sales_payment_failed(order, reason)


def order_payment_retry(
    *, order_id: int, user: User, payment_method_id: str | None = None
) -> Order:
    """The buyer pays again (after a decline, or to restart 3-D Secure), optionally with
    another verified payment method. Earlier intents still open are canceled first, so two
    attempts can never both succeed."""
    _order_get_for_buyer(order_id=order_id, user=user)
    method = buyer_payment_method(user=user, payment_method_id=payment_method_id)
    with transaction.atomic():
        order = order_lock(order_id=order_id).get()
        if order.attempts.filter(status__in=OPEN_ATTEMPT_STATUSES).exists():
            raise ConflictError(
                "A payment for this order is still being processed.", code="payment_in_progress"
            )
        if order.status not in PAYABLE_STATUSES:
            raise ConflictError(
                f"This order cannot be paid now (it is {order.status}).", code="order_not_payable"
            )
        if _cancelled_sale_ids(order):
            raise ConflictError(
                "The unpaid-item window has closed for this order.", code="sale_cancelled"
            )
        stale = list(
            order.attempts.filter(
                status__in=(A.REQUIRES_ACTION, A.REQUIRES_PAYMENT_METHOD),
                stripe_payment_intent_id__isnull=False,
            ).values_list("pk", flat=True)
        )
    for stale_id in stale:
        _attempt_cancel(attempt_id=stale_id)
    with transaction.atomic():
        order = order_lock(order_id=order_id).get()
        if order.status not in PAYABLE_STATUSES:  # a canceled intent turned out to have succeeded
            return order
        attempt = _attempt_new(order, method.customer_id, method.payment_method_id)
    attempt_send(attempt_id=attempt.pk)
    order.refresh_from_db()
    return order


def _cancelled_sale_ids(order: Order) -> list[int]:
    from gavel.auctions.models import Sale

    return list(
        order.lines.filter(sale__status=Sale.Status.CANCELLED).values_list("sale_id", flat=True)
    )


def orders_unpaid_cancel(*, limit: int = 200) -> int:
    """Cancel unpaid orders whose sales auctions cancelled (the unpaid-item window closed):
    their open intents are canceled first, so a late 3-D Secure cannot charge them."""
    from gavel.auctions.models import Sale

    candidates = list(
        Order.objects.filter(status__in=PAYABLE_STATUSES, lines__sale__status=Sale.Status.CANCELLED)
        .exclude(
            lines__sale__status__in=(
                Sale.Status.AWAITING_PAYMENT,
                Sale.Status.PAYMENT_FAILED,
                Sale.Status.PAID,
            )
        )
        .exclude(attempts__status__in=OPEN_ATTEMPT_STATUSES)
        .values_list("pk", flat=True)
        .distinct()[:limit]
    )
    cancelled = 0
    for order_id in candidates:
        stale = list(
            PaymentAttempt.objects.filter(
                order_id=order_id,
                status__in=(A.REQUIRES_ACTION, A.REQUIRES_PAYMENT_METHOD),
                stripe_payment_intent_id__isnull=False,
            ).values_list("pk", flat=True)
        )
        for stale_id in stale:
            _attempt_cancel(attempt_id=stale_id)
        with transaction.atomic():
            order = order_lock(order_id=order_id).get()
            if order.status in PAYABLE_STATUSES:
                order_transition(
                    order=order,
                    operation=Operation.CANCEL,
                    to_status=S.CANCELED,
                    reason="sales cancelled after the unpaid-item window",
                )
                cancelled += 1
    return cancelled


def _attempt_cancel(*, attempt_id: int) -> None:
    attempt = PaymentAttempt.objects.get(pk=attempt_id)
    assert attempt.stripe_payment_intent_id
    try:
        intent = gateway_intents.payment_intent_cancel(
            operation_id=attempt.pk, payment_intent_id=attempt.stripe_payment_intent_id
        )
    except GatewayFinalError:
        intent = gateway_intents.payment_intent_retrieve(
            payment_intent_id=attempt.stripe_payment_intent_id
        )
    attempt_intent_apply(attempt_id=attempt.pk, intent=intent, source="cancel")


def attempt_send(*, attempt_id: int) -> PaymentAttempt:
    """Send (or re-send, with the same key) an attempt's PaymentIntent and apply the answer."""
    attempt = PaymentAttempt.objects.select_related("order").get(pk=attempt_id)
    order = attempt.order
    destination: str | None = None
    application_fee: int | None = None
    if order is not None and order.funds_flow == Order.FundsFlow.DESTINATION_CHARGE:
        line = order.lines.get()
        destination = line.seller_account_id
        application_fee = order.total_minor - line.seller_net_minor
    metrics.CHARGE_ATTEMPTS.labels(purpose=attempt.purpose).inc()
    try:
        intent = gateway_intents.payment_intent_create(
            operation_id=attempt.pk,
            amount_minor=attempt.amount_minor,
            currency=attempt.currency,
            customer_id=attempt.stripe_customer_id,
            payment_method_id=attempt.stripe_payment_method_id,
            capture_manually=attempt.capture_manually,
            transfer_group=order.transfer_group if order is not None else None,
            destination_account_id=destination,
            application_fee_minor=application_fee,
            metadata={"gavel_attempt_id": str(attempt.pk)}
            | ({"gavel_order_id": str(order.pk)} if order is not None else {}),
        )
    except GatewayCardDeclined as declined:
        return _attempt_declined(attempt, declined)
    except GatewayRetryableError as error:
        return _attempt_unknown(attempt, error)
    except GatewayFinalError as error:
        return _attempt_failed(attempt, error)
    return attempt_intent_apply(attempt_id=attempt.pk, intent=intent, source="create")


def _attempt_declined(attempt: PaymentAttempt, declined: GatewayCardDeclined) -> PaymentAttempt:
    if declined.payment_intent_id:
        intent = gateway_intents.payment_intent_retrieve(
            payment_intent_id=declined.payment_intent_id
        )
        return attempt_intent_apply(
            attempt_id=attempt.pk,
            intent=intent,
            source="create",
            requires_authentication=declined.requires_authentication,
        )
    return _attempt_failed(attempt, declined)


def _attempt_unknown(attempt: PaymentAttempt, error: GatewayRetryableError) -> PaymentAttempt:
    with transaction.atomic():
        order = order_lock(order_id=attempt.order_id).get() if attempt.order_id else None
        locked = attempt_lock(attempt_id=attempt.pk).get()
        if locked.status not in (A.CREATING, A.UNKNOWN):
            return locked
        if error.outcome_unknown:
            locked.status = A.UNKNOWN
            locked.error_code = (error.code or "outcome_unknown")[:100]
            locked.save(update_fields=["status", "error_code", "updated_at"])
            if order is not None and order_transition_allowed(
                order=order, operation=Operation.ATTEMPT_UNKNOWN, to_status=S.UNKNOWN
            ):
                order_transition(
                    order=order,
                    operation=Operation.ATTEMPT_UNKNOWN,
                    to_status=S.UNKNOWN,
                    reason=f"attempt {locked.pk}: {error.message}"[:300],
                )
        event_record(
            order=order,
            type="charge_request_unknown" if error.outcome_unknown else "charge_request_retry",
            amount_minor=locked.amount_minor,
            currency=locked.currency,
            message=error.message,
        )
    metrics.OUTCOMES_UNKNOWN.labels(operation="payment_intent").inc()
    return locked


def _attempt_failed(attempt: PaymentAttempt, error: GatewayFinalError) -> PaymentAttempt:
    with transaction.atomic():
        order = order_lock(order_id=attempt.order_id).get() if attempt.order_id else None
        locked = attempt_lock(attempt_id=attempt.pk).get()
        if locked.status not in (A.CREATING, A.UNKNOWN):
            return locked
        locked.status = A.FAILED
        locked.error_code = (error.code or "failed")[:100]
        locked.save(update_fields=["status", "error_code", "updated_at"])
        if order is not None and order_transition_allowed(
            order=order, operation=Operation.DECLINE, to_status=S.FAILED
        ):
            order_transition(
                order=order, operation=Operation.DECLINE, to_status=S.FAILED, reason=error.message
            )
            _sales_payment_failed(order, error.message)
        event_record(order=order, type="charge_failure", message=error.message)
    return locked


# ----------------------------------------------------------------------------- applying


def attempt_intent_apply(
    *,
    attempt_id: int,
    intent: StripePaymentIntent,
    source: str,
    stripe_event_id: str = "",
    requires_authentication: bool = False,
) -> PaymentAttempt:
    """Apply what Stripe says about an attempt's PaymentIntent (from our call, a webhook or
    the janitor). Never moves the attempt or the order backwards."""
    attempt = PaymentAttempt.objects.get(pk=attempt_id)
    with transaction.atomic():
        order = order_lock(order_id=attempt.order_id).get() if attempt.order_id else None
        attempt = attempt_lock(attempt_id=attempt_id).get()
        new_status = INTENT_STATUS.get(intent.status, A.UNKNOWN)
        if attempt.stripe_payment_intent_id in (None, ""):
            attempt.stripe_payment_intent_id = intent.id
        attempt.stripe_charge_id = intent.latest_charge_id or attempt.stripe_charge_id
        if intent.last_error_code:
            attempt.error_code = intent.last_error_code[:100]
            attempt.decline_code = (intent.last_decline_code or "")[:100]
        moved = _attempt_move_allowed(attempt.status, new_status)
        if moved:
            attempt.status = new_status
        attempt.save()
        event_record(
            order=order,
            type=f"payment_intent.{intent.status}",
            amount_minor=intent.amount_received_minor or intent.amount_minor,
            currency=intent.currency,
            stripe_object_id=intent.id,
            stripe_event_id=stripe_event_id,
            applied=moved,
            message=f"attempt {attempt.pk} via {source}",
        )
        if not moved:
            return attempt
        if attempt.purpose == PaymentAttempt.Purpose.HOLD:
            from gavel.payments.services.holds import hold_attempt_applied

            hold_attempt_applied(attempt=attempt, intent=intent)
        if order is not None:
            _order_apply(order, attempt, intent, requires_authentication)
    return attempt


def _order_apply(
    order: Order,
    attempt: PaymentAttempt,
    intent: StripePaymentIntent,
    requires_authentication: bool,
) -> None:
    latest = order.attempts.order_by("-pk").values_list("pk", flat=True).first()
    status = attempt.status
    if status == A.SUCCEEDED:
        _order_captured(order, attempt, intent)
        return
    if attempt.pk != latest:
        return  # an older attempt's news never drives the order
    needs_action = status == A.REQUIRES_ACTION or (
        status == A.REQUIRES_PAYMENT_METHOD
        and (requires_authentication or intent.last_error_code == "authentication_required")
    )
    if needs_action:
        _order_move(order, Operation.REQUIRE_ACTION, S.REQUIRES_ACTION, "3-D Secure required")
        _sales_payment_failed(order, "authentication required")
    elif status == A.REQUIRES_PAYMENT_METHOD:
        reason = f"declined: {intent.last_decline_code or intent.last_error_code or 'card'}"
        _order_move(order, Operation.DECLINE, S.FAILED, reason)
        _sales_payment_failed(order, reason)
    elif status == A.REQUIRES_CAPTURE:
        _order_move(order, Operation.AUTHORIZE, S.AUTHORIZED, "authorized")
    elif status == A.PROCESSING:
        _order_move(order, Operation.ATTEMPT_UNKNOWN, S.UNKNOWN, "processing")
    elif status == A.CANCELED and order.status == S.AUTHORIZED:
        _order_move(order, Operation.DECLINE, S.FAILED, "authorization canceled or expired")
        _sales_payment_failed(order, "authorization expired")


def _order_move(order: Order, operation: Operation, to_status: str, reason: str) -> None:
    if order_transition_allowed(order=order, operation=operation, to_status=to_status):
        order_transition(order=order, operation=operation, to_status=to_status, reason=reason)


def _sales_payment_failed(order: Order, reason: str) -> None:
    from gavel.auctions.services.sales import sale_payment_failed

    for sale_id in order.lines.exclude(sale=None).values_list("sale_id", flat=True):
        assert sale_id is not None
        sale_payment_failed(sale_id=sale_id, reason=reason[:200])


def _sales_mark_paid(order: Order) -> None:
    from gavel.auctions.services.sales import sale_mark_paid

    for sale_id in order.lines.exclude(sale=None).values_list("sale_id", flat=True):
        assert sale_id is not None
        try:
            sale_mark_paid(sale_id=sale_id)
        except ConflictError as error:
            event_record(
                order=order,
                type="sale_cancelled_before_payment",
                message=f"sale {sale_id}: {error.message} A refund is due.",
                applied=False,
            )


def _order_captured(order: Order, attempt: PaymentAttempt, intent: StripePaymentIntent) -> None:
    if order.stripe_charge_id and order.stripe_payment_intent_id != intent.id:
        event_record(
            order=order,
            type="duplicate_payment",
            amount_minor=intent.amount_received_minor,
            stripe_object_id=intent.id,
            applied=False,
            message="A second payment succeeded for a paid order; refund it.",
        )
        return
    if not order_transition_allowed(order=order, operation=Operation.CAPTURE, to_status=S.CAPTURED):
        event_record(
            order=order,
            type="capture_late",
            stripe_object_id=intent.id,
            applied=False,
            message=f"captured while {order.status}",
        )
        return
    assert intent.latest_charge_id
    charge = gateway_intents.charge_retrieve(charge_id=intent.latest_charge_id)
    assert charge.balance_transaction_id
    charge_bt = gateway_balance.balance_transaction_retrieve(
        balance_transaction_id=charge.balance_transaction_id
    )
    now = timezone.now()
    lines = list(order.lines.order_by("pk"))
    entry_lines, links = _capture_lines(order, lines, charge_bt)
    if order.funds_flow == Order.FundsFlow.DESTINATION_CHARGE:
        links += _destination_links(order, lines[0], charge.transfer_id, charge.application_fee_id)
    money_post(
        reference=f"order:{order.pk}:capture",
        kind="order_capture",
        lines=entry_lines,
        links=links,
        description=f"Order {order.pk} paid by {intent.id}",
    )
    order.captured_minor = charge_bt.amount_minor
    order.stripe_fee_minor = charge_bt.stripe_fee_minor
    order.stripe_charge_id = charge.id
    order.stripe_payment_intent_id = intent.id
    order.captured_at = now
    order.transfers_release_after = now + timedelta(seconds=settings.PAYMENTS_TRANSFER_HOLD_SECONDS)
    order.save(
        update_fields=[
            "captured_minor",
            "stripe_fee_minor",
            "stripe_charge_id",
            "stripe_payment_intent_id",
            "captured_at",
            "transfers_release_after",
            "updated_at",
        ]
    )
    order_transition(
        order=order, operation=Operation.CAPTURE, to_status=S.CAPTURED, reason=f"{intent.id}"
    )
    event_record(
        order=order,
        type="capture_success",
        amount_minor=charge_bt.amount_minor,
        stripe_object_id=charge.id,
    )
    metrics.CAPTURED_MINOR.labels(currency=order.currency).inc(charge_bt.amount_minor)
    _sales_mark_paid(order)
    from gavel.payments.services.holds import holds_release_after_payment

    holds_release_after_payment(order=order, paid_by_attempt_id=attempt.pk)


def _capture_lines(
    order: Order, lines: list[OrderLine], charge_bt: StripeBalanceTransaction
) -> tuple[list[Line], list[BalanceLink]]:
    currency = order.currency
    entry: list[Line] = [debit(accounts.BUYER_RECEIVABLE, order.total_minor, currency)]
    for line in lines:
        entry.append(
            credit(accounts.seller_payable(line.seller_account_id), line.seller_net_minor, currency)
        )
    entry += [
        credit(accounts.COMMISSION_REVENUE, order.commission_minor, currency),
        credit(
            accounts.BUYERS_PREMIUM_REVENUE,
            order.buyers_premium_minor + order.buyer_fees_minor,
            currency,
        ),
        debit(accounts.STRIPE_FEES, charge_bt.fee_minor, currency),
        credit(accounts.BUYER_RECEIVABLE, charge_bt.amount_minor, currency),
    ]
    return entry, [BalanceLink(charge_bt)]


def _destination_links(
    order: Order, line: OrderLine, transfer_id: str | None, application_fee_id: str | None
) -> list[BalanceLink]:
    """A destination charge moved money at capture: the transfer, its destination payment on
    the seller's account, and the application fee back to the platform."""
    assert transfer_id
    transfer = gateway_transfers.transfer_retrieve(transfer_id=transfer_id)
    links: list[BalanceLink] = []
    assert transfer.balance_transaction_id
    assert transfer.destination_payment_id
    links.append(
        BalanceLink(
            gateway_balance.balance_transaction_retrieve(
                balance_transaction_id=transfer.balance_transaction_id
            )
        )
    )
    links += [
        BalanceLink(bt, line.seller_account_id)
        for bt in gateway_balance.balance_transactions_list(
            account_id=line.seller_account_id, source_id=transfer.destination_payment_id
        )
    ]
    if application_fee_id:
        links += [
            BalanceLink(bt)
            for bt in gateway_balance.balance_transactions_list(source_id=application_fee_id)
        ]
    SellerTransfer.objects.bulk_create(
        [
            SellerTransfer(
                line=line,
                kind=SellerTransfer.Kind.DESTINATION,
                status=SellerTransfer.Status.SUCCEEDED,
                amount_minor=transfer.amount_minor,
                currency=order.currency,
                destination_account_id=line.seller_account_id,
                stripe_transfer_id=transfer.id,
            )
        ],
        ignore_conflicts=True,
    )
    OrderLine.objects.filter(pk=line.pk).update(transferred_minor=line.seller_net_minor)
    return links


# ----------------------------------------------------------------------------- buyer actions


def order_payment_refresh(*, order_id: int, user: User) -> Order:
    """The buyer's app finished 3-D Secure: re-read the intent now rather than wait for the
    webhook."""
    order = _order_get_for_buyer(order_id=order_id, user=user)
    attempt = order.attempts.exclude(stripe_payment_intent_id=None).order_by("-pk").first()
    if attempt is None or attempt.stripe_payment_intent_id is None:
        raise ConflictError("This order has no payment to refresh.", code="no_payment")
    intent = gateway_intents.payment_intent_retrieve(
        payment_intent_id=attempt.stripe_payment_intent_id
    )
    attempt_intent_apply(attempt_id=attempt.pk, intent=intent, source="refresh")
    order.refresh_from_db()
    return order


def order_authentication_secret(*, order_id: int, user: User) -> tuple[str, str, str]:
    """(payment_intent_id, client_secret, payment_method_id) for the app to finish 3-D Secure
    with PaymentSheet or Elements. The secret is read from Stripe, never stored."""
    order = _order_get_for_buyer(order_id=order_id, user=user)
    if order.status != S.REQUIRES_ACTION:
        raise ConflictError("This order does not need authentication.", code="no_action_needed")
    attempt = order.attempts.exclude(stripe_payment_intent_id=None).order_by("-pk").first()
    if attempt is None or attempt.stripe_payment_intent_id is None:
        raise ConflictError("This order has no payment to authenticate.", code="no_payment")
    intent = gateway_intents.payment_intent_retrieve(
        payment_intent_id=attempt.stripe_payment_intent_id
    )
    if not intent.client_secret:
        raise ConflictError("Stripe gave no client secret.", code="no_client_secret")
    return intent.id, intent.client_secret, attempt.stripe_payment_method_id


def order_capture(*, order_id: int, amount_minor: int | None = None) -> Order:
    """Capture an authorized order (manual capture; in-flight legacy authorizations too)."""
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        raise NotFoundError("No such order.", code="order_not_found")
    attempt = order.attempts.filter(status=A.REQUIRES_CAPTURE).order_by("-pk").first()
    if order.status != S.AUTHORIZED or attempt is None or not attempt.stripe_payment_intent_id:
        raise ConflictError("This order is not authorized.", code="order_not_authorized")
    try:
        intent = gateway_intents.payment_intent_capture(
            operation_id=attempt.pk,
            payment_intent_id=attempt.stripe_payment_intent_id,
            amount_minor=amount_minor,
        )
    except GatewayRetryableError:
        metrics.OUTCOMES_UNKNOWN.labels(operation="capture").inc()
        raise
    attempt_intent_apply(attempt_id=attempt.pk, intent=intent, source="capture")
    order.refresh_from_db()
    return order


def attempt_of_metadata(intent: StripePaymentIntent) -> PaymentAttempt | None:
    raw = intent.metadata.get("gavel_attempt_id", "")
    return PaymentAttempt.objects.filter(pk=int(raw)).first() if raw.isdigit() else None


def order_payment_attach(*, order_id: int, payment_intent_id: str) -> Order:
    """Adopt a PaymentIntent made elsewhere (the legacy portal's in-flight charges, manual
    capture and destination charges included) as the order's payment: an authorized intent
    leaves the order authorized, to be captured with ``order_capture``; a succeeded one is
    posted as captured. Idempotent (the intent id is unique)."""
    intent = gateway_intents.payment_intent_retrieve(payment_intent_id=payment_intent_id)
    with transaction.atomic():
        order = order_lock(order_id=order_id).first()
        if order is None:
            raise NotFoundError("No such order.", code="order_not_found")
        if intent.amount_minor != order.total_minor or intent.currency != order.currency:
            raise ConflictError(
                "The payment does not match the order's total.", code="payment_mismatch"
            )
        PaymentAttempt.objects.bulk_create(
            [
                PaymentAttempt(
                    order=order,
                    amount_minor=intent.amount_minor,
                    currency=order.currency,
                    capture_manually=intent.capture_method == "manual",
                    stripe_customer_id=intent.customer_id or "",
                    stripe_payment_method_id=intent.payment_method_id or "",
                    stripe_payment_intent_id=intent.id,
                    status=A.CREATING,
                )
            ],
            ignore_conflicts=True,
        )
    attempt = PaymentAttempt.objects.get(stripe_payment_intent_id=intent.id)
    attempt_intent_apply(attempt_id=attempt.pk, intent=intent, source="attach")
    order.refresh_from_db()
    return order
