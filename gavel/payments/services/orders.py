"""Orders: the fee breakdown frozen at checkout, and the auctions handoff."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from gavel.common.errors import NotFoundError, ServiceError
from gavel.common.money import MoneyError, currency_normalize
from gavel.payments.fees import CommissionRule, LineFees, line_fees_compute
from gavel.payments.lock_objects import sales_lock
from gavel.payments.models import FeeSchedule, Order, OrderLine, OrderTransition
from gavel.payments.sellers import seller_account_id
from gavel.payments.states import Operation
from gavel.users.models import User


def commission_rule_for(*, seller_id: int, category: str, currency: str) -> CommissionRule:
    """A seller's own schedule beats their category's, which beats the default."""
    rows = {
        row.scope: row
        for row in FeeSchedule.objects.filter(currency=currency).filter(
            scope=FeeSchedule.Scope.SELLER, seller_id=seller_id
        )
    } or {
        row.scope: row
        for row in FeeSchedule.objects.filter(
            currency=currency, scope=FeeSchedule.Scope.CATEGORY, category=category
        )
    }
    row = rows.get(FeeSchedule.Scope.SELLER) or rows.get(FeeSchedule.Scope.CATEGORY)
    if row is not None:
        return CommissionRule(
            rate_bps=row.rate_bps,
            fixed_minor=row.fixed_minor,
            minimum_minor=row.minimum_minor,
            maximum_minor=row.maximum_minor,
        )
    maximum: int = settings.PAYMENTS_COMMISSION_MAXIMUM_MINOR
    return CommissionRule(
        rate_bps=settings.PAYMENTS_COMMISSION_RATE_BPS,
        fixed_minor=settings.PAYMENTS_COMMISSION_FIXED_MINOR,
        minimum_minor=settings.PAYMENTS_COMMISSION_MINIMUM_MINOR,
        maximum_minor=maximum or None,
    )


def line_fees_for(*, seller_id: int, category: str, currency: str, hammer_minor: int) -> LineFees:
    return line_fees_compute(
        hammer_minor=hammer_minor,
        commission=commission_rule_for(seller_id=seller_id, category=category, currency=currency),
        buyers_premium_bps=settings.PAYMENTS_BUYERS_PREMIUM_BPS,
        buyer_fee_minor=settings.PAYMENTS_BUYER_FIXED_FEE_MINOR,
    )


@dataclass(frozen=True, slots=True)
class LineSpec:
    seller: User
    hammer_minor: int
    category: str = ""
    description: str = ""
    sale_id: int | None = None
    seller_account_id: str | None = None
    fees: LineFees | None = None  # legacy imports bring the fees they charged


@dataclass(frozen=True, slots=True)
class HistoryStep:
    """A past transition, for orders imported with their history."""

    from_status: str
    to_status: str
    operation: str
    occurred_at: datetime
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OrderImport:
    status: str
    history: Sequence[HistoryStep] = field(default_factory=tuple)
    legacy_reference: str | None = None


def order_create(
    *,
    buyer: User,
    kind: str,
    currency: str,
    lines: Sequence[LineSpec],
    funds_flow: str | None = None,
    imported: OrderImport | None = None,
) -> Order:
    """Create an order with its lines and fee breakdown (inside the caller's transaction or
    its own). ``imported`` creates it in a given state with its history (legacy import)."""
    try:
        currency = currency_normalize(currency)
    except MoneyError as error:
        raise ServiceError(str(error), code="currency_unsupported") from error
    if not lines:
        raise ServiceError("An order needs at least one line.", code="order_empty")
    flow = funds_flow or (
        settings.PAYMENTS_BUY_NOW_FUNDS_FLOW
        if kind == Order.Kind.BUY_NOW
        else settings.PAYMENTS_FUNDS_FLOW
    )
    if flow not in Order.FundsFlow.values:
        raise ServiceError(f"Unknown funds flow {flow!r}.", code="funds_flow_unknown")
    if flow == Order.FundsFlow.DESTINATION_CHARGE and len({ln.seller.pk for ln in lines}) > 1:
        flow = Order.FundsFlow.SEPARATE_TRANSFERS  # destination charges pay one seller only
    computed: list[tuple[LineSpec, LineFees, str]] = []
    for spec in lines:
        if spec.hammer_minor <= 0:
            raise ServiceError("A line's price must be positive.", code="amount_invalid")
        fees = spec.fees or line_fees_for(
            seller_id=spec.seller.pk,
            category=spec.category,
            currency=currency,
            hammer_minor=spec.hammer_minor,
        )
        account = spec.seller_account_id or seller_account_id(user=spec.seller)
        computed.append((spec, fees, account))
    with transaction.atomic():
        order = Order.objects.create(
            buyer=buyer,
            kind=kind,
            funds_flow=flow,
            currency=currency,
            status=imported.status if imported else Order.Status.PENDING,
            subtotal_minor=sum(fees.hammer_minor for _, fees, _ in computed),
            buyers_premium_minor=sum(fees.buyers_premium_minor for _, fees, _ in computed),
            buyer_fees_minor=sum(fees.buyer_fee_minor for _, fees, _ in computed),
            commission_minor=sum(fees.commission_minor for _, fees, _ in computed),
            total_minor=sum(fees.total_minor for _, fees, _ in computed),
            legacy_reference=imported.legacy_reference if imported else None,
        )
        OrderLine.objects.bulk_create(
            OrderLine(
                order=order,
                sale_id=spec.sale_id,
                seller=spec.seller,
                seller_account_id=account,
                category=spec.category,
                description=spec.description[:300],
                hammer_minor=fees.hammer_minor,
                buyers_premium_minor=fees.buyers_premium_minor,
                buyer_fee_minor=fees.buyer_fee_minor,
                commission_minor=fees.commission_minor,
                seller_net_minor=fees.seller_net_minor,
                total_minor=fees.total_minor,
            )
            for spec, fees, account in computed
        )
        now = timezone.now()
        steps = list(imported.history) if imported else []
        if not steps:
            steps = [
                HistoryStep("", order.status, Operation.CREATE, now, "order created"),
            ]
        OrderTransition.objects.bulk_create(
            OrderTransition(
                order=order,
                from_status=step.from_status,
                to_status=step.to_status,
                operation=step.operation,
                reason=step.reason,
                occurred_at=step.occurred_at,
            )
            for step in steps
        )
    return order


def order_for_sale(*, sale_id: int) -> Order:
    """The order that charges a sale: the one it is already in, or a new checkout holding it
    and (PAYMENTS_COMBINE_SALES) the buyer's other unpaid auction sales in that currency."""
    from gavel.auctions.models import Sale

    with transaction.atomic():
        sale = sales_lock(sale_ids=[sale_id]).first()
        if sale is None:
            raise NotFoundError("No such sale.", code="sale_not_found")
        existing = OrderLine.objects.filter(sale_id=sale.pk).select_related("order").first()
        if existing is not None:
            return existing.order
        if sale.status == Sale.Status.CANCELLED:
            raise ServiceError("This sale was cancelled.", code="sale_cancelled", status_code=409)
        sales: list[Sale] = [sale]
        if settings.PAYMENTS_COMBINE_SALES and sale.kind != Sale.Kind.BUY_NOW:
            others = list(
                Sale.objects.filter(
                    buyer_id=sale.buyer_id,
                    currency=sale.currency,
                    status=Sale.Status.AWAITING_PAYMENT,
                    order_line__isnull=True,
                )
                .exclude(pk=sale.pk)
                .exclude(kind=Sale.Kind.BUY_NOW)
                .values_list("pk", flat=True)
            )
            locked = list(sales_lock(sale_ids=others))  # pk order
            sales += [
                row
                for row in locked
                if row.status == Sale.Status.AWAITING_PAYMENT
                and not OrderLine.objects.filter(sale_id=row.pk).exists()
            ]
        sales.sort(key=lambda row: row.pk)
        kind = Order.Kind.BUY_NOW if sale.kind == Sale.Kind.BUY_NOW else Order.Kind.AUCTION
        return order_create(
            buyer=sale.buyer,
            kind=kind,
            currency=sale.currency,
            lines=[
                LineSpec(
                    seller=row.seller,
                    hammer_minor=row.amount_minor,
                    category=row.auction.category,
                    description=row.auction.title,
                    sale_id=row.pk,
                )
                for row in sales
            ],
        )


@dataclass(frozen=True, slots=True)
class ImportedPayment:
    """What had happened to an imported order's money before Gavel took it over."""

    stripe_payment_intent_id: str = ""
    stripe_charge_id: str = ""
    captured_minor: int = 0
    stripe_fee_minor: int = 0
    refunded_minor: int = 0
    disputed_minor: int = 0
    transferred_minor: int = 0  # of the seller's net, already with the seller
    captured_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ImportedOrder:
    """One order of a bulk import (``orders_import``): one seller line with the fees that
    were charged, its state and full history, and its payment facts."""

    buyer_id: int
    seller_id: int
    seller_account_id: str
    currency: str
    fees: LineFees
    imported: OrderImport
    funds_flow: str = Order.FundsFlow.DESTINATION_CHARGE
    description: str = ""
    payment: ImportedPayment = field(default_factory=ImportedPayment)


def _imported_order_refused(row: ImportedOrder) -> str | None:
    """Why a row cannot be an order (None: it can), checked before anything is written."""
    imported = row.imported
    if not imported.legacy_reference:
        return "a bulk-imported order needs its legacy reference"
    if imported.status not in Order.Status.values:
        return f"unknown status {imported.status!r}"
    if row.funds_flow not in Order.FundsFlow.values:
        return f"unknown funds flow {row.funds_flow!r}"
    if (
        row.fees.hammer_minor <= 0
        or min(row.fees.commission_minor, row.fees.buyers_premium_minor, row.fees.buyer_fee_minor)
        < 0
    ):
        return "a line's price must be positive and its fees not negative"
    if imported.history and imported.history[-1].to_status != imported.status:
        return "the history must end in the order's status"
    payment = row.payment
    if min(payment.captured_minor, payment.refunded_minor, payment.transferred_minor) < 0:
        return "payment amounts cannot be negative"
    if payment.refunded_minor > payment.captured_minor:
        return "refunded more than captured"
    return None


def orders_import(*, rows: Sequence[ImportedOrder]) -> int:
    """Create many imported orders at once (the legacy import): each with its line, fee
    breakdown, history and payment facts, in one transaction (PostgreSQL ``COPY``). Returns
    how many were created.

    A row whose ``legacy_reference`` is already an order is skipped (a repeated or resumed
    import adds nothing; the unique reference guards a concurrent one). Every row is checked
    first: one bad row refuses the whole batch with ServiceError and writes nothing.
    """
    prepared: list[tuple[ImportedOrder, str]] = []
    for row in rows:
        refused = _imported_order_refused(row)
        try:
            currency = currency_normalize(row.currency)
        except MoneyError as error:
            refused = refused or str(error)
        if refused is not None:
            raise ServiceError(
                f"{row.imported.legacy_reference}: {refused}.", code="order_import_invalid"
            )
        prepared.append((row, currency))
    with transaction.atomic():
        existing = set(
            Order.objects.filter(
                legacy_reference__in=[row.imported.legacy_reference for row, _ in prepared]
            ).values_list("legacy_reference", flat=True)
        )
        fresh = [
            (row, cur) for row, cur in prepared if row.imported.legacy_reference not in existing
        ]
        if not fresh:
            return 0
        _orders_copy(fresh)
    return len(fresh)


# COPY, not bulk_create: a legacy import writes millions of rows, and the ORM's INSERT of model
# instances was most of its time. The database's constraints still check every row.
_ORDER_COLUMNS = (
    "buyer_id, kind, funds_flow, currency, status, subtotal_minor, buyers_premium_minor,"
    " buyer_fees_minor, commission_minor, total_minor, captured_minor, refunded_minor,"
    " disputed_minor, stripe_fee_minor, stripe_payment_intent_id, stripe_charge_id,"
    " captured_at, legacy_reference, created_at, updated_at"
)
_LINE_COLUMNS = (
    "order_id, seller_id, seller_account_id, category, description, hammer_minor,"
    " buyers_premium_minor, buyer_fee_minor, commission_minor, seller_net_minor, total_minor,"
    " refunded_seller_minor, refunded_commission_minor, refunded_premium_minor,"
    " refunded_absorbed_minor, disputed_seller_minor, transferred_minor, reversed_minor"
)
_TRANSITION_COLUMNS = "order_id, from_status, to_status, operation, reason, occurred_at, created_at"


def _orders_copy(fresh: Sequence[tuple[ImportedOrder, str]]) -> None:
    now = timezone.now()
    tables = (Order._meta.db_table, OrderLine._meta.db_table, OrderTransition._meta.db_table)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {tables[0]} ({_ORDER_COLUMNS}) FROM STDIN") as copy:
            for row, currency in fresh:
                fees, payment = row.fees, row.payment
                copy.write_row(
                    (
                        row.buyer_id, Order.Kind.LEGACY.value, row.funds_flow, currency,
                        row.imported.status, fees.hammer_minor, fees.buyers_premium_minor,
                        fees.buyer_fee_minor, fees.commission_minor, fees.total_minor,
                        payment.captured_minor, payment.refunded_minor, payment.disputed_minor,
                        payment.stripe_fee_minor, payment.stripe_payment_intent_id,
                        payment.stripe_charge_id, payment.captured_at,
                        row.imported.legacy_reference, now, now,
                    )
                )  # fmt: skip
        order_ids: dict[str, int] = {
            str(reference): order_id
            for reference, order_id in Order.objects.filter(
                legacy_reference__in=[row.imported.legacy_reference for row, _ in fresh]
            ).values_list("legacy_reference", "id")
        }
        with cursor.cursor.copy(f"COPY {tables[1]} ({_LINE_COLUMNS}) FROM STDIN") as copy:
            for row, _ in fresh:
                fees = row.fees
                copy.write_row(
                    (
                        order_ids[str(row.imported.legacy_reference)], row.seller_id,
                        row.seller_account_id, "", row.description[:300], fees.hammer_minor,
                        fees.buyers_premium_minor, fees.buyer_fee_minor, fees.commission_minor,
                        fees.seller_net_minor, fees.total_minor, 0, 0, 0, 0, 0,
                        row.payment.transferred_minor, 0,
                    )
                )  # fmt: skip
        with cursor.cursor.copy(f"COPY {tables[2]} ({_TRANSITION_COLUMNS}) FROM STDIN") as copy:
            for row, _ in fresh:
                order_id = order_ids[str(row.imported.legacy_reference)]
                steps = row.imported.history or [
                    HistoryStep("", row.imported.status, Operation.CREATE, now, "imported")
                ]
                for step in steps:
                    copy.write_row(
                        (
                            order_id, step.from_status, step.to_status, step.operation,
                            step.reason[:300], step.occurred_at, now,
                        )
                    )  # fmt: skip
