"""Stage two, orders: staged legacy transactions -> ``payments.Order``, and in-flight payments
handed over to Gavel's payment services.

Each Stripe transaction of the portal whose buyer and seller are Gavel users becomes one
order (kind ``legacy``, reference ``legacy:transactions:<id>``) in the status the mapping
gives its last transition (``states.GAVEL_ORDER_STATUS``), with every transition as history,
the fees the portal charged, and its payment facts. A page of transactions is built in SQL
straight from the staging tables (the state mapping and the portal's allowed moves joined as
small tables generated from ``states.py``) into the payments import tables, then written by
``gavel.payments.services.orders.orders_import_apply``: a repeated or resumed load adds
nothing. Only the few transactions without a payment row have their amounts computed in
Python, by the portal's own rules (``commission.py``).

A delta moves orders already loaded: the new legacy steps are appended to the order's history
and its status and payment facts follow; a move the portal's machine does not allow, or an
order whose history no longer starts like the legacy one, is left as it is and reported
(``order_move_refused``). Nothing is posted to the ledger here: the money of captured payments
is there already (``ledger_plan``), and an in-flight payment is posted by Gavel when it
captures it.

``orders_in_flight_adopt`` then hands each imported authorization to
``order_payment_attach`` (read through the gateway), after which ``order_capture``,
``order_receipt_confirm`` and the payout run carry it on like any Gavel order.
"""

# SQL here is built from identifiers in this code and states.py, never from input; values are
# parameters.
# ruff: noqa: S608

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import Any

from django.db import connection

from gavel.common.errors import ServiceError
from gavel.common.money import SUPPORTED_CURRENCIES, MoneyError
from gavel.common.planner import hash_joins_only
from gavel.common.references import inserts_checked_in_bulk
from gavel.gateway.errors import GatewayFinalError, GatewayRetryableError
from gavel.legacy.adoption import orders_captured_adopt
from gavel.legacy.checks import (
    anomalies_insert,
    anomalies_resolve,
    order_people_select,
    orders_scope,
)
from gavel.legacy.commission import amounts_compute
from gavel.legacy.indexes import table_filled_by_run
from gavel.legacy.loader import key_page_bounds, key_split, seller_accounts_prepare
from gavel.legacy.models import ImportRun
from gavel.legacy.reader import Anomaly, stripe_id_sql
from gavel.legacy.staging import anomalies_record
from gavel.legacy.states import (
    CAPTURED_STATES,
    GAVEL_ORDER_STATUS,
    AnomalyKind,
    LegacyState,
    move_kind,
)
from gavel.payments.models import Order, OrderLine, OrderTransition
from gavel.payments.services.charging import order_payment_attach
from gavel.payments.services.orders import (
    IMPORT_HISTORY,
    IMPORT_ORDERS,
    orders_import_apply,
    orders_import_tables_reset,
)

logger = logging.getLogger(__name__)

REFERENCE_PREFIX = "legacy:transactions:"
HISTORY_OPERATION = "legacy_import"
S = Order.Status

_INTENT_ID = stripe_id_sql("stripe_payment_intent_id", "pay.stripe_payment_intent_id")
_CHARGE_ID = stripe_id_sql("stripe_charge_id", "pay.stripe_charge_id")


def _literal(value: str | None) -> str:
    return "NULL::text" if value is None else "'" + value.replace("'", "''") + "'"


def _mapping_values() -> str:
    """``states.GAVEL_ORDER_STATUS`` as a VALUES list (state, status, is_captured); states
    mapped to no status (``free``) are left out, as are unknown ones: they keep the status."""
    rows = [
        (_literal(state.value), _literal(status), "true" if state in CAPTURED_STATES else "false")
        for state, (status, _) in GAVEL_ORDER_STATUS.items()
        if status
    ]
    return ", ".join(f"({state}, {status}, {is_captured})" for state, status, is_captured in rows)


def _moves_values() -> str:
    """Every move ``states.move_kind`` accepts (allowed or deprecated), as (from, to)."""
    sources: list[str | None] = [None, *LegacyState]
    return ", ".join(
        f"({_literal(source)}, {_literal(target)})"
        for source, target in itertools.product(sources, LegacyState)
        if move_kind(source, target) != "not_allowed"
    )


# The page: eligible transactions with ids in (after, last].
_PAGE = (
    "o.legacy_id > %(after)s AND o.legacy_id <= %(last)s AND NOT o.is_quarantined"
    " AND o.payment_gateway = 'stripe'"
)
MAPPING = f"(VALUES {_mapping_values()}) AS m(state, status, is_captured)"

# Every step of the page's histories in the portal's order (sort_key, id), with the Gavel
# status after it: the last mapped status so far (a step mapped to none keeps the one before;
# 'pending' before any), read off the running list of the statuses mapped so far in the same
# window as the rest (a second window over the mapped groups cost a second sort of the page's
# half a million steps). The status before it (``from_status``; '' before the first step) is
# read off the same list: its last entry but one when the step itself is mapped, else its last
# (a window over the steps again, for the history, was another such sort). ``may_append``:
# the portal's machine allows the move. The steps go straight into the payments service's
# import history (the steps of a transaction that does not become an order are there too,
# and the service ignores them: it reads the history of the import's orders), and each
# transaction's last step, with when it was first paid, into ``_legacy_finals``: the window
# is computed once and its rows written once, not kept in a table of their own to be copied.
STEPS_SQL = f"""
WITH s AS (
    SELECT s.tx, s.step, s.to_state, s.at, mv.to_state IS NOT NULL AS may_append,
           COALESCE(s.mapped_so_far[cardinality(s.mapped_so_far)], 'pending') AS status,
           CASE WHEN s.step = 1 THEN ''
                ELSE COALESCE(s.mapped_so_far[cardinality(s.mapped_so_far)
                                              - (s.own_status IS NOT NULL)::integer], 'pending')
           END AS from_status,
           s.is_last, s.paid_at
    FROM (
        SELECT t.transaction_legacy_id AS tx, t.to_state, t.legacy_created_at AS at,
               m.status AS own_status, row_number() OVER w AS step,
               array_remove(array_agg(m.status) OVER w, NULL) AS mapped_so_far,
               lag(t.to_state) OVER w AS prev_state,
               lead(t.legacy_id) OVER w IS NULL AS is_last,
               (array_agg(t.legacy_created_at) FILTER (WHERE t.to_state = 'paid') OVER w)[1]
                   AS paid_at
        FROM legacy_legacyorder o
        JOIN legacy_legacyordertransition t ON t.transaction_legacy_id = o.legacy_id
        LEFT JOIN {MAPPING} ON m.state = t.to_state
        WHERE {_PAGE} AND {{scope}}
          -- implied by the join, stated for the planner: the page's range of the history
          -- index, not a scan of every transition
          AND t.transaction_legacy_id > %(after)s AND t.transaction_legacy_id <= %(last)s
        WINDOW w AS (PARTITION BY t.transaction_legacy_id ORDER BY t.sort_key, t.legacy_id)
    ) s
    LEFT JOIN (VALUES {_moves_values()}) AS mv(from_state, to_state)
        ON COALESCE(mv.from_state, '') = COALESCE(s.prev_state, '') AND mv.to_state = s.to_state
), history AS (
    INSERT INTO {IMPORT_HISTORY} (seq, step, from_status, to_status, operation, reason,
        occurred_at, may_append)
    SELECT s.tx, s.step, s.from_status, s.status, '{HISTORY_OPERATION}',
           'legacy ' || COALESCE(s.to_state, ''), s.at, s.may_append
    FROM s
)
INSERT INTO _legacy_finals (tx, final_state, last_at, paid_at)
SELECT s.tx, s.to_state, s.at, s.paid_at FROM s WHERE s.is_last
"""

# Transactions not captured and without a payment row that can be loaded: their amounts come
# from the portal's commission rules (computed in Python, ``commission.amounts_compute``).
UNPAID_TERMS_SQL = f"""
SELECT o.legacy_id, o.unit_price_cents, o.listing_quantity, o.shipping_price_cents,
       o.commission_from_seller, o.minimum_commission_cents, o.commission_from_buyer,
       o.minimum_buyer_fee_cents
FROM _legacy_finals f
JOIN {MAPPING} ON m.state = f.final_state
JOIN legacy_legacyorder o ON o.legacy_id = f.tx
WHERE NOT m.is_captured AND o.unit_price_cents IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM legacy_legacypayment p
                  WHERE p.transaction_legacy_id = o.legacy_id AND NOT p.is_quarantined)
  -- implied by the finals, stated for the planner: the page's range of the orders
  AND o.legacy_id > %(after)s AND o.legacy_id <= %(last)s
"""

ORDERS_FILL_SQL = f"""
INSERT INTO {IMPORT_ORDERS} (seq, legacy_reference, buyer_id, seller_id, seller_account_id,
    currency, funds_flow, description, status, hammer_minor, buyers_premium_minor,
    buyer_fee_minor, commission_minor, stripe_payment_intent_id, stripe_charge_id,
    captured_minor, stripe_fee_minor, refunded_minor, disputed_minor, transferred_minor,
    captured_at)
SELECT o.legacy_id, '{REFERENCE_PREFIX}' || o.legacy_id, buyer.id, seller.id,
       COALESCE(acct.stripe_seller_id, 'person:' || o.listing_author_legacy_id), a.currency,
       CASE WHEN m.is_captured THEN 'separate_transfers' ELSE 'destination_charge' END,
       COALESCE(l.title, ''), m.status,
       a.sum_cents - a.buyer_commission_cents, a.buyer_commission_cents, 0, a.commission_cents,
       CASE WHEN {_INTENT_ID}
            THEN pay.stripe_payment_intent_id ELSE '' END,
       CASE WHEN m.is_captured AND {_CHARGE_ID}
            THEN pay.stripe_charge_id ELSE '' END,
       CASE WHEN m.is_captured THEN a.sum_cents ELSE 0 END,
       CASE WHEN m.is_captured THEN COALESCE(pay.real_fee_cents, 0) ELSE 0 END,
       CASE WHEN m.is_captured AND m.status = '{S.REFUNDED.value}' THEN a.sum_cents ELSE 0 END,
       CASE WHEN m.is_captured AND m.status IN ('{S.DISPUTED.value}', '{S.DISPUTE_LOST.value}')
            THEN a.sum_cents ELSE 0 END,
       CASE WHEN m.is_captured AND pay.status = 'transfered'
            THEN a.sum_cents - a.buyer_commission_cents - a.commission_cents ELSE 0 END,
       CASE WHEN m.is_captured THEN COALESCE(f.paid_at, f.last_at) END
FROM _legacy_finals f
JOIN {MAPPING} ON m.state = f.final_state
JOIN legacy_legacyorder o ON o.legacy_id = f.tx
JOIN users_user buyer ON buyer.legacy_person_id = o.starter_legacy_id
JOIN users_user seller ON seller.legacy_person_id = o.listing_author_legacy_id
LEFT JOIN legacy_legacylisting l ON l.legacy_id = o.listing_legacy_id
LEFT JOIN (
    SELECT DISTINCT ON (p.transaction_legacy_id) p.transaction_legacy_id, p.status,
           p.currency, p.sum_cents, p.commission_cents, p.buyer_commission_cents,
           p.real_fee_cents, p.stripe_payment_intent_id, p.stripe_charge_id
    FROM legacy_legacypayment p
    WHERE p.transaction_legacy_id > %(after)s AND p.transaction_legacy_id <= %(last)s
      AND NOT p.is_quarantined
    ORDER BY p.transaction_legacy_id, p.legacy_id
) pay ON pay.transaction_legacy_id = o.legacy_id
LEFT JOIN _seller_accounts acct ON acct.person = o.listing_author_legacy_id
LEFT JOIN _legacy_computed c ON c.tx = o.legacy_id
CROSS JOIN LATERAL (
    SELECT upper(trim(COALESCE(pay.currency, o.unit_price_currency))) AS currency,
           COALESCE(pay.sum_cents, c.sum_cents) AS sum_cents,
           CASE WHEN pay.sum_cents IS NULL THEN c.commission_cents
                ELSE pay.commission_cents END AS commission_cents,
           CASE WHEN pay.sum_cents IS NULL THEN c.buyer_commission_cents
                ELSE pay.buyer_commission_cents END AS buyer_commission_cents
) a
WHERE a.currency = ANY(%(currencies)s) AND a.sum_cents IS NOT NULL
  AND a.sum_cents - a.buyer_commission_cents > 0
  -- implied by the finals, stated for the planner: the page's range of the orders, not a hash
  -- of every staged order built again for each page
  AND o.legacy_id > %(after)s AND o.legacy_id <= %(last)s
"""

# The page's transactions that cannot become orders because their buyer or seller got no
# Gavel user (``users_load`` quarantined the person, e.g. an ``email_conflict``): reported,
# not dropped in silence. Their payments are still posted: the money moved.
WITHOUT_USER_SQL = order_people_select(
    "{p}.id IS NULL",
    # Joined from the page's finals (not ``IN (SELECT …)``, which the planner ran as a loop
    # over the finals for every order with a person missing) within the page's range.
    joins=f"JOIN _legacy_finals f ON f.tx = o.legacy_id JOIN {MAPPING} ON m.state = f.final_state"
    " LEFT JOIN users_user b ON b.legacy_person_id = o.starter_legacy_id"
    " LEFT JOIN users_user s ON s.legacy_person_id = o.listing_author_legacy_id",
    # Only the page's transactions that did not become orders: one without a user cannot
    # have (the orders join both users). On 1 M payments: 3.3 statement-seconds in all, was
    # 4.8 with every transaction of the page checked.
    where="o.legacy_id > %(after)s AND o.legacy_id <= %(last)s"
    f" AND o.legacy_id NOT IN (SELECT seq FROM {IMPORT_ORDERS})",
)

# The safety net: the page's transactions that did not become orders though their buyer and
# seller have users, for a reason no other anomaly names (a last state Gavel does not map;
# no amounts to charge, or none in a supported currency). Never dropped in silence; tried
# again by every run while open. ``free`` transactions are never orders, and a captured one
# whose payment is quarantined is named by its payment's anomaly. First the few left out
# (``LEFT_OUT_SQL``: one hash of the page's import rows), then only those looked up by index
# (hashing every user and payment for each page cost the orders lane a fifth more time).
LEFT_OUT_SQL = f"""
SELECT f.tx FROM _legacy_finals f
WHERE f.final_state IS DISTINCT FROM '{LegacyState.FREE.value}'
  AND f.tx NOT IN (SELECT seq FROM {IMPORT_ORDERS})
"""
NOT_LOADED_SQL = f"""
SELECT f.tx::text, jsonb_build_object('final_state', f.final_state, 'reason',
       CASE WHEN m.state IS NULL THEN 'state_unmapped' ELSE 'no_amounts' END)
FROM _legacy_finals f
JOIN legacy_legacyorder o ON o.legacy_id = f.tx
JOIN users_user b ON b.legacy_person_id = o.starter_legacy_id
JOIN users_user s ON s.legacy_person_id = o.listing_author_legacy_id
LEFT JOIN {MAPPING} ON m.state = f.final_state
WHERE f.tx = ANY(%(left_out)s) AND o.legacy_id = ANY(%(left_out)s)
  AND NOT EXISTS (SELECT 1 FROM legacy_legacypayment p
                  WHERE p.transaction_legacy_id = f.tx AND p.is_quarantined)
"""


@dataclass(frozen=True, slots=True)
class OrdersPageResult:
    last_key: int
    read: int
    created: int
    moved: int
    refused: int


_ELIGIBLE = "NOT o.is_quarantined AND o.payment_gateway = 'stripe'"


def _orders_loaded(scope_after: int) -> str:
    """The transactions a run loads, as ``key_split`` and ``key_page_bounds`` take them."""
    return f"FROM legacy_legacyorder o WHERE {_ELIGIBLE} AND {orders_scope(scope_after)}"


def orders_split_key(*, scope_after: int, share: float) -> int:
    """The transaction id after which about ``share`` of the orders to load lie
    (``key_split``)."""
    return key_split(
        rows=_orders_loaded(scope_after),
        key="o.legacy_id",
        params={"scope": scope_after},
        share=share,
    )


def orders_page_load(
    *, run: ImportRun, scope_after: int, after_key: int, limit: int, until_key: int | None = None
) -> OrdersPageResult | None:
    """Load (or move on) the next page of transactions after ``after_key`` (up to
    ``until_key`` when given), inside the caller's transaction; None when none is left."""
    last, read = key_page_bounds(
        rows=_orders_loaded(scope_after),
        key="o.legacy_id",
        params={"scope": scope_after},
        after_key=after_key,
        limit=limit,
        until_key=until_key,
    )
    if not read:
        return None
    params: dict[str, Any] = {
        "after": after_key,
        "last": last,
        "scope": scope_after,
        "currencies": sorted(SUPPORTED_CURRENCIES),
    }
    orders_import_tables_reset()
    with connection.cursor() as cursor:
        # Dropped at commit; dropped here too for a dry run's single transaction.
        cursor.execute("DROP TABLE IF EXISTS _legacy_finals, _legacy_computed")
        seller_accounts_prepare()
        cursor.execute(
            "CREATE TEMPORARY TABLE _legacy_finals (tx bigint NOT NULL, final_state text,"
            " last_at timestamptz, paid_at timestamptz) ON COMMIT DROP"
        )
        cursor.execute(STEPS_SQL.format(scope=orders_scope(scope_after)), params)
        # Statistics for the joins that build the page's orders: without them the planner
        # expects a few dozen rows and looks every one up by index, for 100,000 of them.
        cursor.execute("ANALYZE _legacy_finals")
        cursor.execute(UNPAID_TERMS_SQL, params)
        unpaid = cursor.fetchall()
        cursor.execute(
            "CREATE TEMPORARY TABLE _legacy_computed (tx bigint PRIMARY KEY, sum_cents bigint,"
            " commission_cents bigint, buyer_commission_cents bigint) ON COMMIT DROP"
        )
        with cursor.cursor.copy("COPY _legacy_computed FROM STDIN") as copy:
            for legacy_id, *terms in unpaid:
                unit_price, quantity, shipping, seller_pct, seller_min, buyer_pct, buyer_min = terms
                try:
                    computed = amounts_compute(
                        unit_price_cents=unit_price,
                        quantity=1 if quantity is None else quantity,
                        shipping_price_cents=shipping,
                        commission_from_seller=seller_pct,
                        minimum_commission_cents=seller_min,
                        commission_from_buyer=buyer_pct,
                        minimum_buyer_fee_cents=buyer_min,
                    )
                except MoneyError:
                    # Terms the rules refuse are quarantined by the row checks
                    # (``invalid_terms``, ``negative_money``); one they missed is no order
                    # and listed by ``order_not_loaded``, never the whole import stopped.
                    continue
                copy.write_row(
                    (
                        legacy_id,
                        computed.sum_cents,
                        computed.seller_commission_cents,
                        computed.buyer_commission_cents,
                    )
                )
        # The page's orders join its users, listings and accounts by hash: the planner,
        # misled by the currency filter, expects a few thousand rows and would look each of
        # the 100,000 up by index, four times (2.4 s a page on 1 M, against 1.1 s).
        with hash_joins_only(cursor):
            cursor.execute(ORDERS_FILL_SQL, params)
            page = {"run": run.pk, "after": after_key, "last": last}
            anomalies_insert(
                AnomalyKind.PERSON_WITHOUT_USER, "transactions", WITHOUT_USER_SQL, page
            )
            cursor.execute(LEFT_OUT_SQL)
            left_out = [tx for (tx,) in cursor.fetchall()]
        if left_out:
            anomalies_insert(
                AnomalyKind.ORDER_NOT_LOADED,
                "transactions",
                NOT_LOADED_SQL,
                {**page, "left_out": left_out},
                reopen=True,
            )
    # Foreign keys checked for the page in one statement each, not per row (ADR 0010).
    with inserts_checked_in_bulk(Order, OrderLine, OrderTransition):
        result = orders_import_apply(
            is_move_allowed=True, is_all_new=table_filled_by_run(run=run, model=Order)
        )
    # A transaction an earlier load reported for want of a user (or could not load), an order
    # now (its buyer and seller have users: the page's import rows hold only such): resolved.
    anomalies_resolve(
        run_id=run.pk,
        table="transactions",
        kinds=[AnomalyKind.PERSON_WITHOUT_USER, AnomalyKind.ORDER_NOT_LOADED],
        rows=f"SELECT s.seq AS legacy_id FROM {IMPORT_ORDERS} s",
    )
    anomalies_record(
        anomalies=[
            Anomaly(
                AnomalyKind.ORDER_MOVE_REFUSED,
                "transactions",
                reference.removeprefix(REFERENCE_PREFIX),
                {"reason": reason},
            )
            for reference, reason in sorted(result.refused.items())
        ],
        run=run,
    )
    return OrdersPageResult(last, read, result.created, result.moved, len(result.refused))


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
