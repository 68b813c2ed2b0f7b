"""Orders: the fee breakdown frozen at checkout, the auctions handoff, and bulk imports."""

# SQL here is built from identifiers in this code, never from input; values are parameters.
# ruff: noqa: S608

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from gavel.common.errors import NotFoundError, ServiceError
from gavel.common.money import SUPPORTED_CURRENCIES, MoneyError, currency_normalize
from gavel.common.planner import hash_joins_only
from gavel.payments.fees import CommissionRule, LineFees, line_fees_compute
from gavel.payments.lock_objects import orders_lock, sales_lock
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
        # Read first, then lock the sale and the buyer's other candidates in one statement in
        # id order (two handoffs for one buyer never lock them in opposite orders), and decide
        # on the locked rows.
        unlocked = Sale.objects.filter(pk=sale_id).first()
        if unlocked is None:
            raise NotFoundError("No such sale.", code="sale_not_found")
        others: list[int] = []
        if settings.PAYMENTS_COMBINE_SALES and unlocked.kind != Sale.Kind.BUY_NOW:
            others = list(
                Sale.objects.filter(
                    buyer_id=unlocked.buyer_id,
                    currency=unlocked.currency,
                    status=Sale.Status.AWAITING_PAYMENT,
                    order_line__isnull=True,
                )
                .exclude(pk=sale_id)
                .exclude(kind=Sale.Kind.BUY_NOW)
                .values_list("pk", flat=True)
            )
        locked = {row.pk: row for row in sales_lock(sale_ids=[sale_id, *others])}  # pk order
        sale = locked.get(sale_id)
        if sale is None:
            raise NotFoundError("No such sale.", code="sale_not_found")
        existing = OrderLine.objects.filter(sale_id=sale.pk).select_related("order").first()
        if existing is not None:
            return existing.order
        if sale.status == Sale.Status.CANCELLED:
            raise ServiceError("This sale was cancelled.", code="sale_cancelled", status_code=409)
        sales: list[Sale] = [
            row
            for pk, row in sorted(locked.items())
            if pk == sale_id
            or (
                row.status == Sale.Status.AWAITING_PAYMENT
                and not OrderLine.objects.filter(sale_id=row.pk).exists()
            )
        ]
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


# ---- bulk import (the legacy import) -------------------------------------------------------
#
# Imported orders arrive in two temporary tables of the caller's transaction (the "import
# tables"): one row per order and one per history step. The legacy import fills them with
# ``INSERT … SELECT`` straight from its staging tables; ``orders_import`` fills them with COPY
# from Python rows. ``orders_import_apply`` then checks every row and writes orders, lines and
# histories with set-based SQL: millions of rows, no model instance per row.

IMPORT_ORDERS = "_orders_import"
IMPORT_HISTORY = "_orders_import_history"
_IMPORT_IDS = "_orders_import_ids"

IMPORT_ORDER_COLUMNS = (
    "seq bigint NOT NULL, legacy_reference text, buyer_id bigint NOT NULL,"
    " seller_id bigint NOT NULL, seller_account_id text NOT NULL, currency text NOT NULL,"
    " funds_flow text NOT NULL, description text NOT NULL, status text NOT NULL,"
    " hammer_minor bigint NOT NULL, buyers_premium_minor bigint NOT NULL,"
    " buyer_fee_minor bigint NOT NULL, commission_minor bigint NOT NULL,"
    " stripe_payment_intent_id text NOT NULL, stripe_charge_id text NOT NULL,"
    " captured_minor bigint NOT NULL, stripe_fee_minor bigint NOT NULL,"
    " refunded_minor bigint NOT NULL, disputed_minor bigint NOT NULL,"
    " transferred_minor bigint NOT NULL, captured_at timestamptz"
)
# A step names its order by the batch's ``seq`` (an integer: the history's joins and sorts
# by it cost a fraction of the same by reference text). ``may_append``: this step may be
# appended to an order that already exists (a delta moved it on); a step that may not makes
# the whole move refused. Steps of a ``seq`` that is not in the batch's orders are ignored
# (the legacy import writes every step of a page of transactions before it knows which
# become orders).
IMPORT_HISTORY_COLUMNS = (
    "seq bigint NOT NULL, step integer NOT NULL, from_status text NOT NULL,"
    " to_status text NOT NULL, operation text NOT NULL, reason text NOT NULL,"
    " occurred_at timestamptz NOT NULL, may_append boolean NOT NULL DEFAULT true"
)
_ORDER_FIELDS = tuple(column.split()[0] for column in IMPORT_ORDER_COLUMNS.split(","))
_HISTORY_FIELDS = tuple(column.split()[0] for column in IMPORT_HISTORY_COLUMNS.split(","))


def orders_import_tables_reset() -> None:
    """Create (once per connection) and empty the import tables. Inside a transaction: they
    are emptied again when it ends."""
    if not connection.in_atomic_block:
        raise RuntimeError("the import tables live in the caller's transaction")
    with connection.cursor() as cursor:
        for table, columns in (
            (IMPORT_ORDERS, IMPORT_ORDER_COLUMNS),
            (IMPORT_HISTORY, IMPORT_HISTORY_COLUMNS),
            # No key: seqs are unique in the batch (``_batch_check``), and the joins read it
            # whole by hash (a text index on the references cost a third of the orders'
            # insert).
            (_IMPORT_IDS, "seq bigint NOT NULL, order_id bigint NOT NULL"),
        ):
            cursor.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {table} ({columns}) ON COMMIT DELETE ROWS"
            )
            cursor.execute(f"TRUNCATE {table}")


@dataclass(frozen=True, slots=True)
class OrdersImportResult:
    created: int
    moved: int  # existing orders given new history steps or new payment facts
    refused: dict[str, str]  # legacy reference -> why its existing order was not moved


def orders_import(*, rows: Sequence[ImportedOrder], is_all_new: bool = False) -> int:
    """Create many imported orders at once (the legacy import): each with its line, fee
    breakdown, history and payment facts, in one transaction. Returns how many were created.

    A row whose ``legacy_reference`` is already an order is not created again (a repeated or
    resumed import adds nothing; the unique reference guards a concurrent one), unless the
    caller says ``is_all_new`` (``orders_import_apply``): then it fails the batch. Every row is
    checked first: one bad row refuses the whole batch with ServiceError and writes nothing.
    """
    with transaction.atomic():
        _import_tables_fill(rows)
        return orders_import_apply(is_move_allowed=False, is_all_new=is_all_new).created


def orders_import_or_move(*, rows: Sequence[ImportedOrder]) -> OrdersImportResult:
    """``orders_import``, and orders already imported moved on as ``orders_import_apply``
    does (every new history step may be appended)."""
    with transaction.atomic():
        _import_tables_fill(rows)
        return orders_import_apply(is_move_allowed=True)


def _import_tables_fill(rows: Sequence[ImportedOrder]) -> None:
    orders_import_tables_reset()
    with connection.cursor() as cursor:
        fields = ", ".join(_ORDER_FIELDS)
        with cursor.cursor.copy(f"COPY {IMPORT_ORDERS} ({fields}) FROM STDIN") as copy:
            for seq, row in enumerate(rows):
                fees, payment = row.fees, row.payment
                copy.write_row(
                    (
                        seq, row.imported.legacy_reference, row.buyer_id, row.seller_id,
                        row.seller_account_id, row.currency, row.funds_flow, row.description,
                        row.imported.status, fees.hammer_minor, fees.buyers_premium_minor,
                        fees.buyer_fee_minor, fees.commission_minor,
                        payment.stripe_payment_intent_id, payment.stripe_charge_id,
                        payment.captured_minor, payment.stripe_fee_minor,
                        payment.refunded_minor, payment.disputed_minor,
                        payment.transferred_minor, payment.captured_at,
                    )
                )  # fmt: skip
        fields = ", ".join(_HISTORY_FIELDS[:-1])
        with cursor.cursor.copy(f"COPY {IMPORT_HISTORY} ({fields}) FROM STDIN") as copy:
            for seq, row in enumerate(rows):
                for step, item in enumerate(row.imported.history, start=1):
                    copy.write_row(
                        (
                            seq, step, item.from_status,
                            item.to_status, item.operation, item.reason, item.occurred_at,
                        )
                    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _BatchChecked:
    refusal: tuple[str | None, str] | None  # the first row that cannot be an order, and why
    has_order_without_history: bool


def _batch_check() -> _BatchChecked:
    """The first import row that cannot be an order, and why (None: every row can), and
    whether an order of the batch has no history rows (it gets a creation step). A reference
    or ``seq`` twice in the batch is found by hash (``IN`` a grouped subquery), not by a
    window sorting the batch by reference in the database's collation."""
    reasons = (
        ("coalesce(s.legacy_reference, '') = ''", "an imported order needs its legacy reference"),
        (
            f"s.legacy_reference IN (SELECT legacy_reference FROM {IMPORT_ORDERS}"
            " GROUP BY legacy_reference HAVING count(*) > 1)",
            "reference twice in the batch",
        ),
        (
            f"s.seq IN (SELECT seq FROM {IMPORT_ORDERS} GROUP BY seq HAVING count(*) > 1)",
            "seq twice in the batch",
        ),
        ("s.status <> ALL(%(statuses)s)", "unknown status"),
        ("s.funds_flow <> ALL(%(flows)s)", "unknown funds flow"),
        (
            "s.hammer_minor <= 0 OR least(s.commission_minor, s.buyers_premium_minor,"
            " s.buyer_fee_minor) < 0",
            "a line's price must be positive and its fees not negative",
        ),
        ("h.to_status <> s.status", "the history must end in the order's status"),
        ("least(s.captured_minor, s.refunded_minor, s.transferred_minor) < 0",
         "payment amounts cannot be negative"),
        ("s.refunded_minor > s.captured_minor", "refunded more than captured"),
        ("upper(trim(s.currency)) <> ALL(%(currencies)s)", "unsupported currency"),
    )  # fmt: skip
    case = " ".join(
        f"WHEN {condition} THEN %(reason_{index})s" for index, (condition, _) in enumerate(reasons)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (array_agg(legacy_reference) FILTER (WHERE reason IS NOT NULL))[1],"
            " (array_agg(reason) FILTER (WHERE reason IS NOT NULL))[1],"
            " COALESCE(bool_or(without_history), false)"
            f" FROM (SELECT s.legacy_reference, CASE {case} END AS reason,"
            " h.seq IS NULL AS without_history"
            f" FROM {IMPORT_ORDERS} s LEFT JOIN (SELECT DISTINCT ON (seq) seq, to_status"
            f" FROM {IMPORT_HISTORY} ORDER BY seq, step DESC) h ON h.seq = s.seq) checked",
            {
                "statuses": list(Order.Status.values),
                "flows": list(Order.FundsFlow.values),
                "currencies": sorted(SUPPORTED_CURRENCIES),
                **{f"reason_{index}": reason for index, (_, reason) in enumerate(reasons)},
            },
        )
        reference, reason, has_order_without_history = cursor.fetchone()
    return _BatchChecked(
        None if reason is None else (reference, reason), bool(has_order_without_history)
    )


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
# The payment facts a later import may bring for an order it already created.
_FACT_COLUMNS = (
    "status", "funds_flow", "captured_minor", "refunded_minor", "disputed_minor",
    "stripe_fee_minor", "stripe_payment_intent_id", "stripe_charge_id", "captured_at",
)  # fmt: skip


def orders_import_apply(
    *, is_move_allowed: bool = True, is_all_new: bool = False
) -> OrdersImportResult:
    """Write what the import tables hold (inside the caller's transaction): new orders with
    their line and history; and, with ``is_move_allowed``, orders already imported moved on.

    ``is_all_new``: the caller knows that no reference of the batch is an order yet (a first
    import into an empty table, its pages disjoint): the orders are inserted without
    ``ON CONFLICT``, about a quarter cheaper, and a reference that is an order after all fails
    the whole batch on the unique index (IntegrityError) instead of being skipped.

    An existing order is moved only when its recorded history is the start of the imported one
    (nothing rewritten, nothing done to it in Gavel since) and every new step ``may_append``:
    the new steps are appended as transitions and its status and payment facts become the
    imported ones. Otherwise it is left as it is and listed in ``refused``. Any row that cannot
    be an order refuses the whole batch with ServiceError before anything is written.
    """
    checked = _batch_check()
    if checked.refusal is not None:
        reference, reason = checked.refusal
        raise ServiceError(f"{reference}: {reason}.", code="order_import_invalid")
    now = timezone.now()
    tables = (Order._meta.db_table, OrderLine._meta.db_table, OrderTransition._meta.db_table)
    # The import tables are joined by hash: the planner, without their statistics, merged
    # them, sorting both sides by reference in the database's collation (on one million
    # payments, about 0.7 of the 2.6 s each page's history took).
    with connection.cursor() as cursor, hash_joins_only(cursor, merge_joins=False):
        cursor.execute(
            f"WITH created AS (INSERT INTO {tables[0]} ({_ORDER_COLUMNS})"
            " SELECT s.buyer_id, %(kind)s, s.funds_flow, upper(trim(s.currency)), s.status,"
            " s.hammer_minor, s.buyers_premium_minor, s.buyer_fee_minor, s.commission_minor,"
            " s.hammer_minor + s.buyers_premium_minor + s.buyer_fee_minor, s.captured_minor,"
            " s.refunded_minor, s.disputed_minor, s.stripe_fee_minor,"
            " s.stripe_payment_intent_id, s.stripe_charge_id, s.captured_at,"
            f" s.legacy_reference, %(now)s, %(now)s FROM {IMPORT_ORDERS} s ORDER BY s.seq"
            + ("" if is_all_new else " ON CONFLICT (legacy_reference) DO NOTHING")
            + " RETURNING id, legacy_reference)"
            f" INSERT INTO {_IMPORT_IDS} (seq, order_id)"
            f" SELECT s.seq, c.id FROM created c JOIN {IMPORT_ORDERS} s USING (legacy_reference)",
            {"kind": Order.Kind.LEGACY.value, "now": now},
        )
        created = cursor.rowcount
        cursor.execute(
            f"INSERT INTO {tables[1]} ({_LINE_COLUMNS})"
            " SELECT i.order_id, s.seller_id, s.seller_account_id, '', left(s.description, 300),"
            " s.hammer_minor, s.buyers_premium_minor, s.buyer_fee_minor, s.commission_minor,"
            " s.hammer_minor - s.commission_minor,"
            " s.hammer_minor + s.buyers_premium_minor + s.buyer_fee_minor,"
            " 0, 0, 0, 0, 0, s.transferred_minor, 0"
            f" FROM {IMPORT_ORDERS} s JOIN {_IMPORT_IDS} i USING (seq) ORDER BY i.order_id"
        )
        # Orders without history rows get a creation step; the branch that finds them is
        # left out when the batch check found none (it hashes every history row's seq).
        created_steps = (
            " UNION ALL SELECT i.order_id, 1, '', s.status, %(create)s, 'imported', %(now)s"
            f" FROM {_IMPORT_IDS} i JOIN {IMPORT_ORDERS} s USING (seq)"
            # NOT IN (the column is NOT NULL): one hash of the history's seqs, where NOT EXISTS
            # was planned as two sorts to merge
            f" WHERE i.seq NOT IN (SELECT h.seq FROM {IMPORT_HISTORY} h)"
            if checked.has_order_without_history
            else ""
        )
        cursor.execute(
            f"INSERT INTO {tables[2]} ({_TRANSITION_COLUMNS})"
            " SELECT order_id, from_status, to_status, operation, reason, occurred_at, %(now)s"
            " FROM (SELECT i.order_id, h.step, h.from_status, h.to_status, h.operation,"
            f" left(h.reason, 300) AS reason, h.occurred_at FROM {IMPORT_HISTORY} h"
            f" JOIN {_IMPORT_IDS} i USING (seq){created_steps})"
            " steps ORDER BY order_id, step",
            {"now": now, "create": Operation.CREATE.value},
        )
    moved, refused = 0, dict[str, str]()
    if is_move_allowed and not is_all_new:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {IMPORT_ORDERS}")
            (staged,) = cursor.fetchone()
        if staged > created:  # some were imported before: they may move on
            moved, refused = _orders_move(now)
    return OrdersImportResult(created=created, moved=moved, refused=refused)


def _orders_move(now: datetime) -> tuple[int, dict[str, str]]:
    """Existing orders of the batch: append their new history steps and take the imported
    payment facts, when their recorded history is the start of the imported one."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT o.id, o.legacy_reference, s.seq FROM {IMPORT_ORDERS} s"
            f" JOIN {Order._meta.db_table} o ON o.legacy_reference = s.legacy_reference"
            f" WHERE NOT EXISTS (SELECT 1 FROM {_IMPORT_IDS} i WHERE i.seq = s.seq) ORDER BY o.id"
        )
        existing: dict[int, str] = {}
        seqs: dict[int, int] = {}  # order id -> its seq in the batch
        for order_id, reference, seq in cursor.fetchall():
            existing[order_id], seqs[order_id] = reference, seq
        if not existing:
            return 0, {}
        list(orders_lock(order_ids=list(existing)))
        cursor.execute(
            "SELECT order_id, from_status, to_status, operation, reason, occurred_at"
            f" FROM {OrderTransition._meta.db_table} WHERE order_id = ANY(%s) ORDER BY id",
            [list(existing)],
        )
        recorded: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        for order_id, *step in cursor.fetchall():
            recorded[order_id].append(tuple(step))
        cursor.execute(
            "SELECT seq, from_status, to_status, operation, left(reason, 300),"
            f" occurred_at, may_append FROM {IMPORT_HISTORY}"
            " WHERE seq = ANY(%s) ORDER BY seq, step",
            [list(seqs.values())],
        )
        imported: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        for seq, *step in cursor.fetchall():
            imported[seq].append(tuple(step))
    refused: dict[str, str] = {}
    appended: list[OrderTransition] = []
    movable: list[int] = []
    for order_id, reference in existing.items():
        steps = imported.get(seqs[order_id], [])
        done = recorded[order_id]
        if steps:
            if [step[:5] for step in steps[: len(done)]] != done:
                refused[reference] = "history_diverged"
                continue
            new = steps[len(done) :]
            if not all(step[5] for step in new):
                refused[reference] = "move_not_allowed"
                continue
            appended += [
                OrderTransition(
                    order_id=order_id,
                    from_status=step[0],
                    to_status=step[1],
                    operation=step[2],
                    reason=step[3],
                    occurred_at=step[4],
                )
                for step in new
            ]
        movable.append(order_id)
    OrderTransition.objects.bulk_create(appended)
    changed = {step.order_id for step in appended}
    if movable:
        old = ", ".join(f"o.{column}" for column in _FACT_COLUMNS)
        new_values = ", ".join(f"s.{column}" for column in _FACT_COLUMNS)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Order._meta.db_table} o SET ({', '.join(_FACT_COLUMNS)}, updated_at)"
                f" = ({new_values}, %s) FROM {IMPORT_ORDERS} s"
                " WHERE o.legacy_reference = s.legacy_reference AND o.id = ANY(%s)"
                f" AND ({old}) IS DISTINCT FROM ({new_values}) RETURNING o.id",
                [now, movable],
            )
            changed |= {order_id for (order_id,) in cursor.fetchall()}
            cursor.execute(
                f"UPDATE {OrderLine._meta.db_table} l SET transferred_minor = s.transferred_minor"
                f" FROM {Order._meta.db_table} o JOIN {IMPORT_ORDERS} s"
                " ON s.legacy_reference = o.legacy_reference"
                " WHERE l.order_id = o.id AND o.id = ANY(%s)"
                " AND l.transferred_minor <> s.transferred_minor RETURNING l.order_id",
                [movable],
            )
            changed |= {order_id for (order_id,) in cursor.fetchall()}
    return len(changed), refused
