"""Stage two, orders: staged legacy transactions -> ``payments.Order``, and in-flight payments
handed over to Gavel's payment services.

Each Stripe transaction of the portal whose buyer and seller are Gavel users becomes one
order (kind ``legacy``, reference ``legacy:transactions:<id>``) in the status the mapping
gives its last transition (``states.GAVEL_ORDER_STATUS``), with every transition as history,
the fees the portal charged, and its payment facts. The rows are written by
``gavel.payments.services.orders.orders_import`` a page at a time: a repeated or resumed load
adds nothing. Nothing is posted to the ledger here: the money of captured payments is already
there (``ledger_plan``), and an in-flight payment is posted by Gavel when it captures it.

``orders_in_flight_adopt`` then hands each imported authorization to
``order_payment_attach`` (read through the gateway), after which ``order_capture``,
``order_receipt_confirm`` and the payout run carry it on like any Gavel order.
"""

# SQL here is built from identifiers in this code, never from input; values are parameters.
# ruff: noqa: S608

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from gavel.common.errors import ServiceError
from gavel.common.money import SUPPORTED_CURRENCIES
from gavel.gateway.errors import GatewayFinalError, GatewayRetryableError
from gavel.legacy.adoption import orders_captured_adopt
from gavel.legacy.commission import amounts_compute
from gavel.legacy.reader import STRIPE_ID_PATTERNS
from gavel.legacy.states import CAPTURED_STATES, GAVEL_ORDER_STATUS, LegacyState
from gavel.payments.fees import LineFees
from gavel.payments.models import Order
from gavel.payments.services.charging import order_payment_attach
from gavel.payments.services.orders import (
    HistoryStep,
    ImportedOrder,
    ImportedPayment,
    OrderImport,
    orders_import,
)

logger = logging.getLogger(__name__)

REFERENCE_PREFIX = "legacy:transactions:"
HISTORY_OPERATION = "legacy_import"
S = Order.Status

_SELLER_ID = STRIPE_ID_PATTERNS["stripe_seller_id"].pattern
_INTENT_ID = STRIPE_ID_PATTERNS["stripe_payment_intent_id"]
_CHARGE_ID = STRIPE_ID_PATTERNS["stripe_charge_id"]

ORDERS_SQL = f"""
SELECT o.legacy_id, l.title, h.states, h.times, buyer.id, seller.id, acct.stripe_seller_id,
       o.listing_author_legacy_id, upper(trim(coalesce(pay.currency, o.unit_price_currency))),
       pay.sum_cents, pay.commission_cents, pay.buyer_commission_cents, pay.real_fee_cents,
       pay.status, pay.stripe_payment_intent_id, pay.stripe_charge_id,
       o.unit_price_cents, o.listing_quantity, o.shipping_price_cents, o.commission_from_seller,
       o.minimum_commission_cents, o.commission_from_buyer, o.minimum_buyer_fee_cents
FROM legacy_legacyorder o
JOIN users_user buyer ON buyer.legacy_person_id = o.starter_legacy_id
JOIN users_user seller ON seller.legacy_person_id = o.listing_author_legacy_id
LEFT JOIN legacy_legacylisting l ON l.legacy_id = o.listing_legacy_id
CROSS JOIN LATERAL (
    SELECT array_agg(t.to_state ORDER BY t.sort_key, t.legacy_id) AS states,
           array_agg(t.legacy_created_at ORDER BY t.sort_key, t.legacy_id) AS times
    FROM legacy_legacyordertransition t WHERE t.transaction_legacy_id = o.legacy_id
) h
LEFT JOIN LATERAL (
    SELECT p.* FROM legacy_legacypayment p
    WHERE p.transaction_legacy_id = o.legacy_id AND NOT p.is_quarantined
    ORDER BY p.legacy_id LIMIT 1
) pay ON true
LEFT JOIN LATERAL (
    SELECT a.stripe_seller_id FROM legacy_legacystripeaccount a
    WHERE a.person_legacy_id = o.listing_author_legacy_id AND a.stripe_seller_id ~ '{_SELLER_ID}'
    ORDER BY a.legacy_id LIMIT 1
) acct ON true
WHERE o.legacy_id > %(after_key)s AND o.staged_run_id > %(scope)s AND NOT o.is_quarantined
  AND o.payment_gateway = 'stripe' AND h.states IS NOT NULL
ORDER BY o.legacy_id
LIMIT %(limit)s
"""


@dataclass(frozen=True, slots=True)
class OrdersPage:
    last_key: int
    read: int
    rows: list[ImportedOrder]


def _status_of(state: str, previous: str) -> str:
    try:
        return GAVEL_ORDER_STATUS[LegacyState(state)][0] or previous
    except ValueError:  # a state the portal no longer knows (reported at staging)
        return previous


def _history(states: Sequence[str], times: Sequence[datetime]) -> list[HistoryStep]:
    steps: list[HistoryStep] = []
    status = ""
    for state, at in zip(states, times, strict=True):
        new = _status_of(state, status or S.PENDING)
        steps.append(HistoryStep(status, new, HISTORY_OPERATION, at, f"legacy {state}"))
        status = new
    return steps


def _valid(pattern: Any, value: str | None) -> str:
    return value if value and pattern.fullmatch(value) else ""


def order_row(row: Sequence[Any]) -> ImportedOrder | None:
    """One staged transaction as an order to import; None when it cannot be one (free, no
    money owed, captured without a payment that can be posted, unsupported currency)."""
    legacy_id, title, states, times, buyer_id, seller_id, account_id, author = row[:8]
    currency, sum_cents, commission, buyer_commission, real_fee, pay_status = row[8:14]
    intent_id, charge_id = row[14:16]
    terms = row[16:]
    final = states[-1]
    status = _status_of(final, "")
    if not status or currency not in SUPPORTED_CURRENCIES:
        return None
    is_captured = final in CAPTURED_STATES
    if sum_cents is None:
        if is_captured or terms[0] is None:
            return None
        unit_price, quantity, shipping, seller_pct, seller_min, buyer_pct, buyer_min = terms
        computed = amounts_compute(
            unit_price_cents=unit_price,
            quantity=quantity or 1,
            shipping_price_cents=shipping,
            commission_from_seller=seller_pct,
            minimum_commission_cents=seller_min,
            commission_from_buyer=buyer_pct,
            minimum_buyer_fee_cents=buyer_min,
        )
        sum_cents = computed.sum_cents
        commission = computed.seller_commission_cents
        buyer_commission = computed.buyer_commission_cents
    fees = LineFees(
        hammer_minor=sum_cents - buyer_commission,
        buyers_premium_minor=buyer_commission,
        buyer_fee_minor=0,
        commission_minor=commission,
    )
    if fees.hammer_minor <= 0:
        return None
    payment = ImportedPayment(stripe_payment_intent_id=_valid(_INTENT_ID, intent_id))
    if is_captured:
        paid_at = next(
            (at for state, at in zip(states, times, strict=True) if state == "paid"), None
        )
        payment = ImportedPayment(
            stripe_payment_intent_id=payment.stripe_payment_intent_id,
            stripe_charge_id=_valid(_CHARGE_ID, charge_id),
            captured_minor=sum_cents,
            stripe_fee_minor=real_fee or 0,
            refunded_minor=sum_cents if status == S.REFUNDED else 0,
            disputed_minor=sum_cents if status in (S.DISPUTED, S.DISPUTE_LOST) else 0,
            transferred_minor=fees.seller_net_minor if pay_status == "transfered" else 0,
            captured_at=paid_at or times[-1],
        )
    return ImportedOrder(
        buyer_id=buyer_id,
        seller_id=seller_id,
        # The same account part as the ledger's seller payable (``ledger_plan``).
        seller_account_id=account_id or f"person:{author}",
        currency=currency,
        fees=fees,
        # The portal held captured money on the platform until it transferred or paid it out
        # (its ledger says so); its preauthorize flow is a manual-capture destination charge.
        funds_flow=Order.FundsFlow.SEPARATE_TRANSFERS
        if is_captured
        else Order.FundsFlow.DESTINATION_CHARGE,
        description=title or "",
        imported=OrderImport(
            status=status,
            history=_history(states, times),
            legacy_reference=f"{REFERENCE_PREFIX}{legacy_id}",
        ),
        payment=payment,
    )


def orders_page_plan(*, scope_after: int, after_key: int, limit: int) -> OrdersPage | None:
    """Read one page of staged transactions (reads only); None when none is left."""
    with connection.cursor() as cursor:
        cursor.execute(ORDERS_SQL, {"after_key": after_key, "scope": scope_after, "limit": limit})
        rows = cursor.fetchall()
    if not rows:
        return None
    planned = [order for order in map(order_row, rows) if order is not None]
    return OrdersPage(int(rows[-1][0]), len(rows), planned)


def orders_page_load(*, page: OrdersPage) -> int:
    """Create the page's orders (inside the caller's transaction); how many were new."""
    return orders_import(rows=page.rows)


@dataclass(frozen=True, slots=True)
class AdoptionResult:
    adopted: list[int]
    refused: dict[int, str]
    retry_later: list[int]


def orders_in_flight_adopt(*, limit: int = 500) -> AdoptionResult:
    """Hand in-flight legacy orders to Gavel: each legacy order still ``authorized`` with a
    PaymentIntent and no attempt yet is attached (read from Stripe through the gateway); then
    captured ones still owing the seller (``paid``) and disputed ones are adopted
    (``adoption.orders_captured_adopt``: charge tied to the legacy capture entry, Stripe's
    dispute recorded). One that Stripe disagrees with is refused and listed; Stripe being
    unavailable leaves the order for the next call."""
    pending = list(
        Order.objects.filter(
            kind=Order.Kind.LEGACY,
            status=S.AUTHORIZED,
            legacy_reference__startswith=REFERENCE_PREFIX,
            attempts=None,
        )
        .exclude(stripe_payment_intent_id="")
        .order_by("pk")
        .values_list("pk", "stripe_payment_intent_id")[:limit]
    )
    adopted: list[int] = []
    refused: dict[int, str] = {}
    retry_later: list[int] = []
    for order_id, intent_id in pending:
        try:
            order_payment_attach(order_id=order_id, payment_intent_id=intent_id)
        except GatewayRetryableError:
            retry_later.append(order_id)
            continue
        except (ServiceError, GatewayFinalError) as error:
            refused[order_id] = str(error)
            logger.warning("legacy in-flight order %s not adopted: %s", order_id, error)
            continue
        adopted.append(order_id)
    captured = orders_captured_adopt(limit=limit)
    for order_id, reason in captured.refused.items():
        logger.warning("legacy in-flight order %s not adopted: %s", order_id, reason)
    return AdoptionResult(
        adopted + captured.adopted,
        refused | captured.refused,
        retry_later + captured.retry_later,
    )
