"""Reads of the payments app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet, Sum

from gavel.common.errors import NotFoundError
from gavel.ledger import accounts
from gavel.ledger.selectors import account_balance
from gavel.payments.models import AuditLogEntry, Order, SellerTransfer
from gavel.payments.services.refunds import order_refundable_minor
from gavel.users.models import User


def orders_for_buyer(*, user: User) -> QuerySet[Order]:
    return Order.objects.filter(buyer=user).prefetch_related("lines")


def order_for_viewer(*, order_id: int, user: User) -> Order:
    """The buyer's own order, or any order for staff; otherwise 404 (no existence leak)."""
    order = Order.objects.prefetch_related("lines").filter(pk=order_id).first()
    if order is None or (order.buyer_id != user.pk and not user.is_staff):
        raise NotFoundError("No such order.", code="order_not_found")
    return order


def order_summary(order: Order) -> dict[str, Any]:
    """The order with its fee breakdown, as the buyer's app shows it."""
    return {
        "id": order.pk,
        "status": order.status,
        "kind": order.kind,
        "funds_flow": order.funds_flow,
        "currency": order.currency,
        "subtotal_minor": order.subtotal_minor,
        "buyers_premium_minor": order.buyers_premium_minor,
        "buyer_fees_minor": order.buyer_fees_minor,
        "total_minor": order.total_minor,
        "captured_minor": order.captured_minor,
        "refunded_minor": order.refunded_minor,
        "refundable_minor": order_refundable_minor(order) if order.captured_minor else 0,
        "lines": [
            {
                "id": line.pk,
                "sale_id": line.sale_id,
                "description": line.description,
                "seller_id": line.seller_id,
                "hammer_minor": line.hammer_minor,
                "buyers_premium_minor": line.buyers_premium_minor,
                "buyer_fee_minor": line.buyer_fee_minor,
                "total_minor": line.total_minor,
            }
            for line in order.lines.all()
        ],
        "created_at": order.created_at,
        "captured_at": order.captured_at,
        "receipt_confirmed_at": order.receipt_confirmed_at,
    }


def order_receipt(order: Order) -> dict[str, Any]:
    if not order.captured_at:
        raise NotFoundError("This order has no receipt yet.", code="receipt_not_found")
    return {
        **order_summary(order),
        "payment_intent_id": order.stripe_payment_intent_id,
        "charge_id": order.stripe_charge_id,
        "paid_minor": order.captured_minor,
    }


@dataclass(frozen=True, slots=True)
class CurrencyEarnings:
    currency: str
    owed_minor: int  # held by the platform or in the seller's Stripe balance
    in_stripe_balance_minor: int
    transferred_minor: int
    commission_minor: int


def seller_earnings(*, account_id: str) -> list[CurrencyEarnings]:
    from gavel.payments.models import OrderLine

    currencies = sorted(
        set(
            OrderLine.objects.filter(seller_account_id=account_id).values_list(
                "order__currency", flat=True
            )
        )
    )
    result = []
    for currency in currencies:
        transferred = (
            SellerTransfer.objects.filter(
                destination_account_id=account_id,
                currency=currency,
                status=SellerTransfer.Status.SUCCEEDED,
            ).aggregate(total=Sum("amount_minor"))["total"]
            or 0
        )
        commission = (
            OrderLine.objects.filter(
                seller_account_id=account_id,
                order__currency=currency,
                order__captured_at__isnull=False,
            ).aggregate(total=Sum("commission_minor"))["total"]
            or 0
        )
        result.append(
            CurrencyEarnings(
                currency=currency,
                owed_minor=-account_balance(
                    code=accounts.seller_payable(account_id).code, currency=currency
                ),
                in_stripe_balance_minor=account_balance(
                    code=accounts.connected_balance(account_id).code, currency=currency
                ),
                transferred_minor=transferred,
                commission_minor=commission,
            )
        )
    return result


def audit_log() -> QuerySet[AuditLogEntry]:
    return AuditLogEntry.objects.select_related("actor")
