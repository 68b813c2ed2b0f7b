"""Row locks of the payments app: querysets that select_for_update in primary-key order.

Lock order when several are needed: the order first, then its attempts, transfers, refunds,
reversals (each by primary key).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from gavel.auctions.models import Sale
from gavel.payments.models import (
    Dispute,
    Hold,
    Order,
    PaymentAttempt,
    Refund,
    SellerTransfer,
    TransferReversal,
)


def order_lock(*, order_id: int) -> QuerySet[Order]:
    return Order.objects.select_for_update().filter(pk=order_id)


def orders_lock(*, order_ids: Iterable[int]) -> QuerySet[Order]:
    return Order.objects.select_for_update().filter(pk__in=list(order_ids)).order_by("pk")


def attempt_lock(*, attempt_id: int) -> QuerySet[PaymentAttempt]:
    return PaymentAttempt.objects.select_for_update().filter(pk=attempt_id)


def transfer_lock(*, transfer_id: int) -> QuerySet[SellerTransfer]:
    return SellerTransfer.objects.select_for_update().filter(pk=transfer_id)


def refund_lock(*, refund_id: int) -> QuerySet[Refund]:
    return Refund.objects.select_for_update().filter(pk=refund_id)


def reversal_lock(*, reversal_id: int) -> QuerySet[TransferReversal]:
    return TransferReversal.objects.select_for_update().filter(pk=reversal_id)


def dispute_lock(*, dispute_id: int) -> QuerySet[Dispute]:
    return Dispute.objects.select_for_update().filter(pk=dispute_id)


def hold_lock(*, hold_id: int) -> QuerySet[Hold]:
    return Hold.objects.select_for_update().filter(pk=hold_id)


def sales_lock(*, sale_ids: Iterable[int]) -> QuerySet[Sale]:
    return Sale.objects.select_for_update().filter(pk__in=list(sale_ids)).order_by("pk")
