"""The janitor: settles operations whose outcome is not known (Kill Bill's
IncompletePaymentTransactionTask).

Every payment intent, transfer, refund and reversal left ``creating`` (past a grace period) or
``unknown`` is re-read from Stripe under its order's row lock, taken with SKIP LOCKED so two
janitors never work on one order. When Stripe has the object (found by id, or by the metadata
we attach), its state is applied; when it does not, the request is sent again with the
operation's own idempotency key, which Stripe answers from memory if it was applied (the
timed-out-but-applied case) and performs once if it was not.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from gavel.gateway import payment_intents as gateway_intents
from gavel.gateway import refunds as gateway_refunds
from gavel.gateway import transfers as gateway_transfers
from gavel.gateway.errors import GatewayError
from gavel.payments import metrics
from gavel.payments.lock_objects import order_lock
from gavel.payments.models import (
    Order,
    PaymentAttempt,
    Refund,
    SellerTransfer,
    TransferReversal,
)
from gavel.payments.services.charging import (
    attempt_intent_apply,
    attempt_send,
    orders_unpaid_cancel,
)
from gavel.payments.services.disputes import disputes_open_refresh
from gavel.payments.services.refunds import refund_execute, refund_succeeded_apply
from gavel.payments.services.transfers import (
    reversal_execute,
    transfer_execute,
    transfer_succeeded_apply,
)

logger = logging.getLogger(__name__)

A = PaymentAttempt.Status
T = SellerTransfer.Status
R = Refund.Status
V = TransferReversal.Status


def _stuck(statuses_unknown: tuple[str, ...], creating: str, cutoff: datetime) -> Q:
    return Q(status__in=statuses_unknown) | Q(status=creating, created_at__lte=cutoff)


def janitor_run(*, now: datetime | None = None, limit: int = 100) -> dict[str, int]:
    """One pass; returns how many operations of each kind were looked at."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.PAYMENTS_JANITOR_MIN_AGE_SECONDS)
    counts = {
        "attempts": 0,
        "captures": 0,
        "transfers": 0,
        "refunds": 0,
        "reversals": 0,
        "disputes": 0,
        "orders_cancelled": 0,
    }
    attempt_ids = list(
        PaymentAttempt.objects.filter(_stuck((A.UNKNOWN, A.PROCESSING), A.CREATING, cutoff))
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    for attempt_id in attempt_ids:
        counts["attempts"] += _guarded(_attempt_settle, attempt_id, kind="attempt")
    hold_orders = list(
        Order.objects.filter(
            status=Order.Status.UNKNOWN,
            attempts__purpose=PaymentAttempt.Purpose.HOLD,
            attempts__status=A.REQUIRES_CAPTURE,
        )
        .values_list("pk", flat=True)
        .distinct()[:limit]
    )
    for order_id in hold_orders:
        counts["captures"] += _guarded(_hold_capture_settle, order_id, kind="capture")
    for transfer_id in (
        SellerTransfer.objects.filter(_stuck((T.UNKNOWN,), T.CREATING, cutoff))
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    ):
        counts["transfers"] += _guarded(_transfer_settle, transfer_id, kind="transfer")
    for refund_id in (
        Refund.objects.filter(_stuck((R.UNKNOWN,), R.CREATING, cutoff))
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    ):
        counts["refunds"] += _guarded(_refund_settle, refund_id, kind="refund")
    for reversal_id in (
        TransferReversal.objects.filter(_stuck((V.UNKNOWN,), V.CREATING, cutoff))
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    ):
        counts["reversals"] += _guarded(_reversal_settle, reversal_id, kind="reversal")
    counts["orders_cancelled"] = orders_unpaid_cancel(limit=limit)
    try:
        counts["disputes"] = disputes_open_refresh(limit=limit)
    except GatewayError as error:
        logger.warning("janitor: disputes not re-read", extra={"error": str(error)})
    except Exception:  # the pass goes on to the payouts janitor; logged with its traceback
        logger.exception("janitor: disputes not re-read", extra={"kind": "dispute"})
    return counts


def _guarded(settle: object, object_id: int, *, kind: str) -> int:
    """Run one settle step; Stripe having no answer yet is not an error (next pass).

    Any other failure is this item's alone: its transaction is rolled back, it is logged with
    its id and traceback, and the pass goes on with the next item (retried next pass).
    """
    assert callable(settle)
    try:
        return 1 if settle(object_id) else 0
    except GatewayError as error:
        logger.warning(
            "janitor: Stripe had no answer yet",
            extra={"kind": kind, "object_id": object_id, "error": str(error)},
        )
        return 0
    except Exception:  # one broken item must not stop every other settlement
        logger.exception(
            "janitor: item failed, left for the next pass",
            extra={"kind": kind, "object_id": object_id},
        )
        metrics.JANITOR_FAILED.labels(kind=kind).inc()
        return 0


def _order_locked_or_skip(order_id: int | None) -> bool:
    """Lock the order (skip it if another worker holds it)."""
    if order_id is None:
        return True
    return order_lock(order_id=order_id).select_for_update(skip_locked=True).first() is not None


def _attempt_settle(attempt_id: int) -> bool:
    attempt = PaymentAttempt.objects.get(pk=attempt_id)
    with transaction.atomic():
        if not _order_locked_or_skip(attempt.order_id):
            return False
        attempt.refresh_from_db()
        if attempt.stripe_payment_intent_id:
            intent = gateway_intents.payment_intent_retrieve(
                payment_intent_id=attempt.stripe_payment_intent_id
            )
            attempt_intent_apply(attempt_id=attempt.pk, intent=intent, source="janitor")
        else:
            attempt_send(attempt_id=attempt.pk)
    metrics.JANITOR_SETTLED.labels(kind="payment_intent").inc()
    return True


def _hold_capture_settle(order_id: int) -> bool:
    from gavel.payments.services.holds import hold_capture_for_order

    attempt = PaymentAttempt.objects.filter(
        order_id=order_id,
        purpose=PaymentAttempt.Purpose.HOLD,
        status=PaymentAttempt.Status.REQUIRES_CAPTURE,
    ).first()
    if attempt is None or not attempt.stripe_payment_intent_id:
        return False
    with transaction.atomic():
        if not _order_locked_or_skip(order_id):
            return False
        intent = gateway_intents.payment_intent_retrieve(
            payment_intent_id=attempt.stripe_payment_intent_id
        )
        if intent.status == "requires_capture":
            hold_capture_for_order(hold_id=attempt.hold.pk, order_id=order_id)
        else:
            attempt_intent_apply(attempt_id=attempt.pk, intent=intent, source="janitor")
    metrics.JANITOR_SETTLED.labels(kind="capture").inc()
    return True


def _transfer_settle(transfer_id: int) -> bool:
    transfer = SellerTransfer.objects.select_related("line__order").get(pk=transfer_id)
    order = transfer.line.order
    with transaction.atomic():
        if not _order_locked_or_skip(order.pk):
            return False
        found = [
            candidate
            for candidate in gateway_transfers.transfers_for_group(
                transfer_group=order.transfer_group
            )
            if candidate.metadata.get("gavel_transfer_id") == str(transfer.pk)
        ]
        if found:
            transfer_succeeded_apply(transfer_id=transfer.pk, stripe_transfer=found[0])
        else:
            transfer_execute(transfer_id=transfer.pk)
    metrics.JANITOR_SETTLED.labels(kind="transfer").inc()
    return True


def _refund_settle(refund_id: int) -> bool:
    refund = Refund.objects.select_related("order").get(pk=refund_id)
    with transaction.atomic():
        if not _order_locked_or_skip(refund.order_id):
            return False
        found = [
            candidate
            for candidate in gateway_refunds.refunds_for_charge(
                charge_id=refund.order.stripe_charge_id
            )
            if candidate.metadata.get("gavel_refund_id") == str(refund.pk)
        ]
    if found:
        refund_succeeded_apply(refund_id=refund.pk, stripe_refund=found[0])
    else:
        refund_execute(refund_id=refund.pk)
    metrics.JANITOR_SETTLED.labels(kind="refund").inc()
    return True


def _reversal_settle(reversal_id: int) -> bool:
    reversal_execute(reversal_id=reversal_id)
    metrics.JANITOR_SETTLED.labels(kind="reversal").inc()
    return True
