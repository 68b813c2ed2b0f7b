"""Anomaly checks as set-based SQL over the staging tables: the row checks of each staged page
(``row_checks_run``, the SQL form of ``reader.ROW_CHECKS``), and the cross-table checks once
every legacy table of a run is staged, in two halves the importer runs side by side (an
order's history; what rows point at); then the quarantine flags that keep blocked rows out of
the load.

Each check inserts into the quarantine with ``ON CONFLICT DO NOTHING``: running it again finds
the same rows and adds nothing. ``scope_after`` limits the orders and payments checked to those
staged after that run id (0: everything).
"""

# SQL here is built from identifiers in this code (tables, columns, state names), never from
# input; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import connection

from gavel.common.money import SUPPORTED_CURRENCIES
from gavel.legacy.ledger_plan import (
    EXPENSE_STRIPE_FEES,
    REVENUE_BUYER_FEE,
    REVENUE_COMMISSION,
    STRIPE_BALANCE,
)
from gavel.legacy.reader import (
    ACCOUNT_STRIPE_IDS,
    CURRENCY_WHITESPACE,
    PAYMENT_MONEY_COLUMNS,
    PAYMENT_NONNEGATIVE_COLUMNS,
    PAYMENT_STRIPE_IDS,
    ROW_CHECKS,
    STRIPE_GATEWAY,
    TRANSACTION_CURRENCIES,
    TRANSACTION_MINIMUMS,
    TRANSACTION_MONEY_COLUMNS,
    stripe_id_sql,
)
from gavel.legacy.states import (
    ALLOWED_MOVES,
    BLOCKING_ANOMALIES,
    DEPRECATED_MOVES,
    EXPECTED_PAYMENT_STATUSES,
    INITIAL_STATE,
    ORDER_LOAD_ANOMALIES,
    AnomalyKind,
)

A = AnomalyKind
ORDERS = "legacy_legacyorder"
TRANSITIONS = "legacy_legacyordertransition"
PAYMENTS = "legacy_legacypayment"
PEOPLE = "legacy_legacyperson"
ANOMALIES = "legacy_legacyanomaly"
ACCOUNTS = "legacy_legacystripeaccount"


def _values(rows: list[tuple[str | None, ...]]) -> str:
    def literal(value: str | None) -> str:
        return "NULL::text" if value is None else "'" + value.replace("'", "''") + "'"

    return ", ".join("(" + ", ".join(literal(value) for value in row) + ")" for row in rows)


def _moves_values() -> str:
    rows: list[tuple[str | None, ...]] = [(None, INITIAL_STATE.value, "allowed")]
    for source, targets in ALLOWED_MOVES.items():
        rows += [(source.value, target.value, "allowed") for target in sorted(targets)]
    for source, targets in DEPRECATED_MOVES.items():
        rows += [(source.value, target.value, "deprecated") for target in sorted(targets)]
    return _values(rows)


def _expected_status_values() -> str:
    rows: list[tuple[str | None, ...]] = [
        (state.value, status)
        for state, statuses in EXPECTED_PAYMENT_STATUSES.items()
        for status in sorted(statuses)
    ]
    return _values(rows)


def anomalies_insert(
    kind: AnomalyKind,
    table: str,
    select_sql: str,
    params: dict[str, Any],
    *,
    reopen: bool = False,
) -> int:
    """``select_sql`` yields (legacy_id text, details jsonb). One anomaly per (kind, table,
    id): one found before is kept as it is, or, with ``reopen``, opened again (with the
    details found now) if a run had resolved it."""
    conflict = (
        "ON CONFLICT ON CONSTRAINT legacy_anomaly_unique DO UPDATE SET resolved_run_id = NULL,"
        f" details = EXCLUDED.details WHERE {ANOMALIES}.resolved_run_id IS NOT NULL"
        if reopen
        else "ON CONFLICT DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ANOMALIES} (kind, legacy_table, legacy_id, is_blocking, details,"
            " run_id, detected_at)"
            f" SELECT %(kind)s, %(table)s, found.legacy_id, %(blocking)s, found.details,"
            f" %(run)s, now() FROM ({select_sql}) AS found(legacy_id, details) {conflict}",
            {**params, "kind": kind.value, "table": table, "blocking": kind in BLOCKING_ANOMALIES},
        )
        return int(cursor.rowcount)


# ---- row checks: the rows one staged page wrote --------------------------------------------
# The same rules as ``reader.ROW_CHECKS`` (the reference, applied to records in Python on the
# record path; a test proves both find the same anomalies), over the staged rows of a page:
# keys in (after, last] that this run wrote (rows it left unchanged were checked when staged).

# reader.CURRENCY_WHITESPACE as a PostgreSQL escape string literal.
_WHITESPACE = "E'" + "".join(f"\\x{ord(char):02x}" for char in CURRENCY_WHITESPACE) + "'"


def _columns_select(table: str, tests: dict[str, str], *, where: str = "TRUE") -> str:
    """The rows (of those ``where`` takes) for which a column's test holds, with the names of
    those columns (``tests``: column -> SQL condition)."""
    names = ", ".join(f"CASE WHEN {held} THEN '{column}' END" for column, held in tests.items())
    return (
        f"SELECT legacy_id::text, jsonb_build_object('columns', array_remove(ARRAY[{names}], NULL))"
        f" FROM {table} WHERE {{page}} AND ({where}) AND ({' OR '.join(tests.values())})"
        " ORDER BY legacy_id"
    )


def _money_select(table: str, columns: tuple[str, ...], test: str, *, where: str = "TRUE") -> str:
    """The rows with a money column for which ``test`` (``{column} IS NULL``, …) holds, with
    the names of those columns."""
    return _columns_select(
        table, {column: test.format(column=column) for column in columns}, where=where
    )


def _currency_normal_sql(column: str) -> str:
    return f"upper(btrim({column}, {_WHITESPACE}))"


# reader.transaction_invalid_terms, column by column.
_INVALID_TERMS = {
    "listing_quantity": "listing_quantity < 1",
    "commission_from_seller": "commission_from_seller < 0",
    "commission_from_buyer": "commission_from_buyer < 0",
    **{
        # stored the same (nearly all): let through before anything is upper-cased
        currency: f"{currency} <> unit_price_currency AND {amount} <> 0"
        f" AND {_currency_normal_sql(currency)} = ANY(%(currencies)s)"
        f" AND {_currency_normal_sql('unit_price_currency')} = ANY(%(currencies)s)"
        f" AND {_currency_normal_sql(currency)} <> {_currency_normal_sql('unit_price_currency')}"
        for amount, currency in TRANSACTION_MINIMUMS
    },
    "unit_price_cents": "unit_price_cents = 0 AND COALESCE(shipping_price_cents, 0) = 0",
}
_STRIPE_TRANSACTION = f"payment_gateway = '{STRIPE_GATEWAY}'"


def _stripe_ids_select(table: str, columns: tuple[str, ...]) -> str:
    invalid = {column: f"NOT {stripe_id_sql(column)}" for column in columns}
    values = ", ".join(
        f"'{column}', CASE WHEN {test} THEN {column} END" for column, test in invalid.items()
    )
    return (
        f"SELECT legacy_id::text, jsonb_build_object('values',"
        f" jsonb_strip_nulls(jsonb_build_object({values})))"
        f" FROM {table} WHERE {{page}} AND ({' OR '.join(invalid.values())}) ORDER BY legacy_id"
    )


def _currency_select(
    table: str,
    columns: tuple[str, ...],
    *,
    is_known: bool,
    required: dict[str, str] | None = None,
) -> str:
    """Unknown currencies (``is_known`` false; a missing one too where ``required`` gives the
    column a condition that holds for the row), or known ones not written in upper case. One
    row per legacy row: its first such column (``columns``' order) and, when there are more,
    the others under ``also`` (two rows for one anomaly would fail its insert)."""
    # One scan of the page, each row's currency columns as (position, name, value, whether
    # one is required) rows; a value that is exactly a supported code (nearly all) is let
    # through by the first, cheap test, before any is trimmed and upper-cased.
    values = ", ".join(
        f"({position}, '{column}', {column}, {(required or {}).get(column, 'FALSE')})"
        for position, column in enumerate(columns)
    )
    upper = _currency_normal_sql("v.value")
    if is_known:
        test = f"v.value <> ALL(%(currencies)s) AND {upper} = ANY(%(currencies)s)"
    else:
        test = (
            f"(v.value IS NULL AND v.is_required) OR (v.value <> ALL(%(currencies)s)"
            f" AND {upper} <> ALL(%(currencies)s))"
        )
    return (
        "SELECT legacy_id::text, (array_agg(details ORDER BY position))[1]"
        " || CASE WHEN count(*) > 1 THEN jsonb_build_object('also',"
        " to_jsonb((array_agg(details ORDER BY position))[2:])) ELSE '{}' END"
        " FROM (SELECT legacy_id, v.position, jsonb_build_object('column', v.name, 'value',"
        f" v.value) AS details FROM {table}"
        f" CROSS JOIN LATERAL (VALUES {values}) AS v(position, name, value, is_required)"
        f" WHERE {{page}} AND ({test})) c GROUP BY legacy_id ORDER BY legacy_id"
    )


ROW_CHECKS_SQL: dict[str, tuple[tuple[AnomalyKind, str], ...]] = {
    "stripe_payments": (
        (A.NULL_MONEY, _money_select(PAYMENTS, PAYMENT_MONEY_COLUMNS, "{column} IS NULL")),
        (A.NEGATIVE_MONEY, _money_select(PAYMENTS, PAYMENT_NONNEGATIVE_COLUMNS, "{column} < 0")),
        (A.INVALID_STRIPE_ID, _stripe_ids_select(PAYMENTS, PAYMENT_STRIPE_IDS)),
        (
            A.UNKNOWN_CURRENCY,
            _currency_select(
                PAYMENTS, ("currency",), is_known=False, required={"currency": "TRUE"}
            ),
        ),
        (A.CURRENCY_CASE, _currency_select(PAYMENTS, ("currency",), is_known=True)),
    ),
    "stripe_accounts": ((A.INVALID_STRIPE_ID, _stripe_ids_select(ACCOUNTS, ACCOUNT_STRIPE_IDS)),),
    "transactions": (
        (
            A.UNKNOWN_CURRENCY,
            _currency_select(
                ORDERS,
                TRANSACTION_CURRENCIES,
                is_known=False,
                required={"unit_price_currency": _STRIPE_TRANSACTION},
            ),
        ),
        (A.CURRENCY_CASE, _currency_select(ORDERS, TRANSACTION_CURRENCIES, is_known=True)),
        (
            A.NULL_MONEY,
            _money_select(
                ORDERS, ("unit_price_cents",), "{column} IS NULL", where=_STRIPE_TRANSACTION
            ),
        ),
        (
            A.NEGATIVE_MONEY,
            _money_select(
                ORDERS, TRANSACTION_MONEY_COLUMNS, "{column} < 0", where=_STRIPE_TRANSACTION
            ),
        ),
        (A.INVALID_TERMS, _columns_select(ORDERS, _INVALID_TERMS, where=_STRIPE_TRANSACTION)),
    ),
}
assert set(ROW_CHECKS_SQL) == set(ROW_CHECKS), "every row check has its SQL form"


def anomalies_resolve(
    *,
    run_id: int,
    table: str,
    kinds: Sequence[AnomalyKind],
    rows: str | None,
    params: dict[str, Any] | None = None,
) -> int:
    """Mark the open anomalies of ``kinds`` on the legacy ``table`` resolved by the run, for
    the rows ``rows`` selects (SQL yielding a ``legacy_id`` column, with ``params``), or every
    open one of those kinds (``rows`` None: a check whose rows include all they name). A join,
    each open anomaly to its row, not ``IN (SELECT …)``: that was planned as a scan of the
    rows for every anomaly (a minute a page of a million payments). Returns how many."""
    source = (
        " WHERE" if rows is None else f" FROM ({rows}) r WHERE a.legacy_id = r.legacy_id::text AND"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {ANOMALIES} a SET resolved_run_id = %(resolving_run)s{source}"
            " a.resolved_run_id IS NULL AND a.legacy_table = %(resolving_table)s"
            " AND a.kind = ANY(%(resolving_kinds)s)",
            {
                **(params or {}),
                "resolving_run": run_id,
                "resolving_table": table,
                "resolving_kinds": [kind.value for kind in kinds],
            },
        )
        return int(cursor.rowcount)


# The staging table each row-checked legacy table is staged into.
_ROW_CHECKED_STAGING = {
    "stripe_payments": PAYMENTS,
    "stripe_accounts": ACCOUNTS,
    "transactions": ORDERS,
}
assert set(_ROW_CHECKED_STAGING) == set(ROW_CHECKS_SQL)


def row_anomalies_resolve(*, table: str, run_id: int, after_key: int, last_key: int) -> int:
    """Before a staged page's row checks run again (in the page's transaction): mark the
    row-check anomalies of the rows this run staged (new or changed, keys in (after, last])
    resolved by this run. The checks then open again those they still find: what is left
    resolved is what the portal fixed, and no longer holds its row back
    (``quarantine_refresh``). Returns how many were marked."""
    kinds = [kind for kind, _ in ROW_CHECKS_SQL.get(table, ())]
    if not kinds:
        return 0
    return anomalies_resolve(
        run_id=run_id,
        table=table,
        kinds=kinds,
        rows=f"SELECT s.legacy_id FROM {_ROW_CHECKED_STAGING[table]} s"
        " WHERE s.staged_run_id = %(run)s AND s.legacy_id > %(after)s AND s.legacy_id <= %(last)s",
        params={"run": run_id, "after": after_key, "last": last_key},
    )


def row_checks_run(
    *, table: str, run_id: int, after_key: int, last_key: int, is_new_range: bool = False
) -> int:
    """Quarantine what the row checks find in a staged page (anomalies its rows had before
    and no longer have are resolved: ``row_anomalies_resolve``; not for a page of new rows,
    ``is_new_range``, which had none); returns the anomalies added or opened again."""
    page = "legacy_id > %(after)s AND legacy_id <= %(last)s AND staged_run_id = %(run)s"
    params = {
        "run": run_id,
        "after": after_key,
        "last": last_key,
        "currencies": sorted(SUPPORTED_CURRENCIES),
    }
    if not is_new_range:
        row_anomalies_resolve(table=table, run_id=run_id, after_key=after_key, last_key=last_key)
    return sum(
        anomalies_insert(kind, table, select.replace("{page}", page), params, reopen=True)
        for kind, select in ROW_CHECKS_SQL.get(table, ())
    )


def orders_scope(scope_after: int) -> str:
    """SQL over staged orders ``o`` (parameter ``%(scope)s``: ``scope_after``): every order on
    a first run; on a later one, those it staged, or whose history or payment it staged, and
    those an earlier load could not make an order of for want of a user (tried again, the
    person may have one now, until a load makes the order and resolves the anomaly). The
    checks, the orders load and the listing links take the same orders."""
    if not scope_after:
        return "TRUE"
    # still open, or resolved by this run (its checks or its orders load): the later steps
    # take it too
    retried = [*sorted(ORDER_LOAD_ANOMALIES), *REFERENCE_ORDER_KINDS]
    return (
        f"(o.staged_run_id > %(scope)s OR o.legacy_id IN (SELECT transaction_legacy_id"
        f" FROM {TRANSITIONS} WHERE staged_run_id > %(scope)s) OR o.legacy_id IN"
        f" (SELECT transaction_legacy_id FROM {PAYMENTS} WHERE staged_run_id > %(scope)s)"
        f" OR o.legacy_id IN ({anomaly_ids_sql(retried, 'transactions', or_resolved=True)})"
        f" OR o.legacy_id IN (SELECT transaction_legacy_id FROM {PAYMENTS} WHERE legacy_id IN"
        f" ({anomaly_ids_sql(REFERENCE_PAYMENT_KINDS, 'stripe_payments', or_resolved=True)})))"
    )


def anomaly_ids_sql(kinds: Sequence[AnomalyKind], table: str, *, or_resolved: bool = False) -> str:
    """SQL yielding the legacy ids (bigint) of the rows of ``table`` that an open anomaly of
    ``kinds`` names; with ``or_resolved``, one resolved by this run too (parameter
    ``%(scope)s``: the runs after it)."""
    names = ", ".join(f"'{kind}'" for kind in kinds)
    resolved = " OR resolved_run_id > %(scope)s" if or_resolved else ""
    return (
        f"SELECT legacy_id::bigint FROM {ANOMALIES} WHERE kind IN ({names})"
        f" AND legacy_table = '{table}' AND (resolved_run_id IS NULL{resolved})"
    )


def payments_rechecked(scope_after: int) -> str:
    """SQL over staged payments ``pay`` (parameter ``%(scope)s``): those whose reference
    anomalies (``REFERENCE_PAYMENT_KINDS``) are still open or were resolved by this run, and
    those whose order's (``REFERENCE_ORDER_KINDS``) were: a later run checks them again, and
    posts those it releases, though the portal did not change them."""
    return (
        "(pay.legacy_id IN"
        f" ({anomaly_ids_sql(REFERENCE_PAYMENT_KINDS, 'stripe_payments', or_resolved=True)})"
        " OR pay.transaction_legacy_id IN"
        f" ({anomaly_ids_sql(REFERENCE_ORDER_KINDS, 'transactions', or_resolved=True)}))"
    )


def order_people_select(condition: str, *, joins: str, where: str) -> str:
    """For ``anomalies_insert``: the staged orders ``o`` (joined by ``joins``, filtered by
    ``where``) whose buyer or seller meets ``condition`` (SQL over ``{p}``: ``b`` for the buyer's
    joined row, ``s`` for the seller's), each with the people it names, buyer first."""
    buyer, seller = condition.format(p="b"), condition.format(p="s")
    return (
        "SELECT o.legacy_id::text, jsonb_build_object('people', to_jsonb(array_remove(ARRAY["
        f"CASE WHEN {buyer} THEN jsonb_build_object('role', 'buyer',"
        " 'person', o.starter_legacy_id) END,"
        f" CASE WHEN {seller} THEN jsonb_build_object('role', 'seller',"
        " 'person', o.listing_author_legacy_id) END], NULL)))"
        f" FROM {ORDERS} o {joins} WHERE {where} AND ({buyer} OR {seller})"
    )


# What ``reference_checks_run`` finds, on the orders and on the payments: checked again on
# every run, with the rows whose anomaly is still open, so that what the portal fixed (the
# person or the transaction arrives, one of two payments gets its own Stripe id) is released.
REFERENCE_ORDER_KINDS = (
    A.PERSON_MISSING,
    A.PERSON_DELETED,
    A.TRANSACTION_DELETED,
    A.SEVERAL_PAYMENTS,
)
# What a payment says against its transaction: checked for the payments in scope and those
# of the orders in scope (the portal may fix either row).
PAYMENT_ORDER_KINDS = (A.RECEIVER_MISMATCH, A.PAYMENT_GATEWAY_MISMATCH)
REFERENCE_PAYMENT_KINDS = (A.ORPHAN_PAYMENT, A.DUPLICATE_STRIPE_ID, *PAYMENT_ORDER_KINDS)
# What ``history_checks_run`` finds, on the orders and on their payments.
HISTORY_ORDER_KINDS = (
    A.STATE_MISMATCH,
    A.TRANSITION_NOT_ALLOWED,
    A.DEPRECATED_STATE,
    A.TRANSITION_OUT_OF_ORDER,
    A.STUCK_REQUIRES_ACTION,  # on a Stripe transaction without a payment row
)
HISTORY_PAYMENT_KINDS = (A.PAYMENT_STATUS_MISMATCH, A.STUCK_REQUIRES_ACTION)


def history_checks_run(
    *, run_id: int, scope_after: int, watermark: datetime, stuck_hours: int
) -> int:
    """The checks of each order's history (its steps in the portal's order): the current state
    against the last step, moves the machine does not allow, steps out of order, payments whose
    status disagrees with their order's state, and payments stuck in 3-D Secure."""
    params: dict[str, Any] = {"run": run_id, "after": scope_after, "scope": scope_after}
    order_scope = orders_scope(scope_after)
    moves = f"(VALUES {_moves_values()}) AS m(from_state, to_state, move)"
    found = 0
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS _legacy_steps")
        # Only the steps a check reads: each history's last, and the steps whose move the
        # machine does not allow or deprecates, or that happened before the step before them
        # (a fifth of the steps written, not all five million).
        cursor.execute(
            "CREATE TEMPORARY TABLE _legacy_steps AS SELECT s.*, m.move FROM ("
            " SELECT t.transaction_legacy_id AS tx, t.to_state, t.legacy_created_at,"
            " LAG(t.to_state) OVER w AS prev_state, LAG(t.legacy_created_at) OVER w AS prev_at,"
            " LEAD(t.legacy_id) OVER w IS NULL AS is_last"
            f" FROM {TRANSITIONS} t JOIN {ORDERS} o ON o.legacy_id = t.transaction_legacy_id"
            f" WHERE {order_scope}"
            " WINDOW w AS (PARTITION BY t.transaction_legacy_id ORDER BY t.sort_key, t.legacy_id)"
            f") s LEFT JOIN {moves} ON m.from_state IS NOT DISTINCT FROM s.prev_state"
            " AND m.to_state = s.to_state"
            " WHERE s.is_last OR m.move IS DISTINCT FROM 'allowed'"
            " OR s.legacy_created_at < s.prev_at",
            params,
        )
        cursor.execute("CREATE INDEX ON _legacy_steps (tx) WHERE is_last")
        cursor.execute("ANALYZE _legacy_steps")
    # The orders in scope are checked whole again: what these checks found on them (or on
    # their payments) before and do not find now is resolved by this run; what they find again
    # is opened again (in this transaction: no moment without either).
    for table, kinds, rows in (
        ("transactions", HISTORY_ORDER_KINDS, f"SELECT o.legacy_id FROM {ORDERS} o"),
        (
            "stripe_payments",
            HISTORY_PAYMENT_KINDS,
            f"SELECT pay.legacy_id FROM {PAYMENTS} pay"
            f" JOIN {ORDERS} o ON o.legacy_id = pay.transaction_legacy_id",
        ),
    ):
        anomalies_resolve(
            run_id=run_id,
            table=table,
            kinds=kinds,
            rows=f"{rows} WHERE {order_scope}",
            params=params,
        )
    found += anomalies_insert(
        A.STATE_MISMATCH,
        "transactions",
        "SELECT o.legacy_id::text, jsonb_build_object('current_state', o.current_state,"
        " 'last_transition', s.to_state)"
        f" FROM {ORDERS} o LEFT JOIN _legacy_steps s ON s.tx = o.legacy_id AND s.is_last"
        # no history is a mismatch even with no current state (both NULL): no order without
        f" WHERE {order_scope} AND (s.tx IS NULL OR o.current_state IS DISTINCT FROM s.to_state)",
        params,
        reopen=True,
    )
    for kind, condition in (
        (A.TRANSITION_NOT_ALLOWED, "s.move IS NULL"),
        (A.DEPRECATED_STATE, "s.move = 'deprecated'"),
    ):
        found += anomalies_insert(
            kind,
            "transactions",
            "SELECT s.tx::text, jsonb_build_object('moves', jsonb_agg(jsonb_build_array("
            f"s.prev_state, s.to_state))) FROM _legacy_steps s WHERE {condition} GROUP BY s.tx",
            params,
            reopen=True,
        )
    found += anomalies_insert(
        A.TRANSITION_OUT_OF_ORDER,
        "transactions",
        "SELECT s.tx::text, jsonb_build_object('steps', jsonb_agg(jsonb_build_array("
        "s.prev_state, s.to_state)))"
        " FROM _legacy_steps s WHERE s.legacy_created_at < s.prev_at GROUP BY s.tx",
        params,
        reopen=True,
    )
    statuses = f"(VALUES {_expected_status_values()}) AS e(state, status)"
    found += anomalies_insert(
        A.PAYMENT_STATUS_MISMATCH,
        "stripe_payments",
        "SELECT pay.legacy_id::text, jsonb_build_object('status', pay.status,"
        " 'transaction_state', s.to_state)"
        f" FROM {PAYMENTS} pay JOIN _legacy_steps s ON s.tx = pay.transaction_legacy_id"
        f" AND s.is_last LEFT JOIN {statuses} ON e.state = s.to_state AND e.status = pay.status"
        " WHERE e.state IS NULL",
        params,
        reopen=True,
    )
    found += anomalies_insert(
        A.STUCK_REQUIRES_ACTION,
        "stripe_payments",
        "SELECT pay.legacy_id::text, jsonb_build_object('since', s.legacy_created_at,"
        " 'intent', pay.stripe_payment_intent_id)"
        f" FROM {PAYMENTS} pay JOIN _legacy_steps s ON s.tx = pay.transaction_legacy_id"
        " AND s.is_last WHERE s.to_state = 'payment_intent_requires_action'"
        " AND s.legacy_created_at <= %(stuck_before)s",
        {**params, "stuck_before": watermark - timedelta(hours=stuck_hours)},
        reopen=True,
    )
    # A Stripe transaction stuck so with no payment row: listed on the transaction (its order
    # is imported ``requires_action`` with no PaymentIntent: the buyer must pay again).
    found += anomalies_insert(
        A.STUCK_REQUIRES_ACTION,
        "transactions",
        "SELECT s.tx::text, jsonb_build_object('since', s.legacy_created_at, 'intent', NULL)"
        f" FROM _legacy_steps s JOIN {ORDERS} o ON o.legacy_id = s.tx"
        " WHERE s.is_last AND s.to_state = 'payment_intent_requires_action'"
        f" AND o.payment_gateway = '{STRIPE_GATEWAY}' AND s.legacy_created_at <= %(stuck_before)s"
        f" AND NOT EXISTS (SELECT 1 FROM {PAYMENTS} pay WHERE pay.transaction_legacy_id = s.tx)",
        {**params, "stuck_before": watermark - timedelta(hours=stuck_hours)},
        reopen=True,
    )
    return found


def reference_checks_run(*, run_id: int, scope_after: int) -> int:
    """The checks of what rows point at: orders whose buyer or seller is missing or deleted,
    orders soft-deleted or with several payments, payments without an order, and Stripe ids
    more than one payment claims. As the history
    checks do, the rows checked are checked whole again: what they found on them before and
    do not find now is resolved by this run, what they find again stays (or is opened again),
    in this transaction. The rows checked: a run's orders (``orders_scope``, which takes
    those with a reference anomaly still open), its payments and those with one still open,
    and every payment for Stripe ids claimed twice."""
    params: dict[str, Any] = {"run": run_id, "after": scope_after, "scope": scope_after}
    order_scope = orders_scope(scope_after)
    payment_scope = f"(pay.staged_run_id > %(after)s OR {payments_rechecked(scope_after)})"
    # Only the rows checked that an open anomaly of the kinds names: a few, where the rows
    # checked may be a million (a join of the anomalies to every row by the text of its id
    # may be planned as a loop over the rows for each anomaly).
    anomalies_resolve(
        run_id=run_id,
        table="transactions",
        kinds=REFERENCE_ORDER_KINDS,
        rows=f"SELECT o.legacy_id FROM {ORDERS} o WHERE {order_scope} AND o.legacy_id IN"
        f" ({anomaly_ids_sql(REFERENCE_ORDER_KINDS, 'transactions')})",
        params=params,
    )
    anomalies_resolve(
        run_id=run_id,
        table="stripe_payments",
        kinds=[A.ORPHAN_PAYMENT],
        rows=f"SELECT pay.legacy_id FROM {PAYMENTS} pay WHERE {payment_scope} AND pay.legacy_id"
        f" IN ({anomaly_ids_sql([A.ORPHAN_PAYMENT], 'stripe_payments')})",
        params=params,
    )
    payment_order_scope = (
        f"FROM {PAYMENTS} pay LEFT JOIN {ORDERS} o ON o.legacy_id = pay.transaction_legacy_id"
        f" WHERE ({payment_scope} OR {order_scope})"
    )
    anomalies_resolve(
        run_id=run_id,
        table="stripe_payments",
        kinds=PAYMENT_ORDER_KINDS,
        rows=f"SELECT pay.legacy_id {payment_order_scope} AND pay.legacy_id"
        f" IN ({anomaly_ids_sql(PAYMENT_ORDER_KINDS, 'stripe_payments')})",
        params=params,
    )
    # Every payment is checked for ids claimed twice: every open one is resolved, and those
    # found again opened again.
    anomalies_resolve(
        run_id=run_id,
        table="stripe_payments",
        kinds=[A.DUPLICATE_STRIPE_ID],
        rows=None,
    )
    found = 0
    # Each order's buyer (b) and seller (s) in the staged people.
    for kind, condition in (
        (A.PERSON_MISSING, "{p}.legacy_id IS NULL"),
        (A.PERSON_DELETED, "{p}.is_deleted"),
    ):
        found += anomalies_insert(
            kind,
            "transactions",
            order_people_select(
                condition,
                joins=f"LEFT JOIN {PEOPLE} b ON b.legacy_id = o.starter_legacy_id"
                f" LEFT JOIN {PEOPLE} s ON s.legacy_id = o.listing_author_legacy_id",
                where=order_scope,
            ),
            params,
            reopen=True,
        )
    found += anomalies_insert(
        A.TRANSACTION_DELETED,
        "transactions",
        f"SELECT o.legacy_id::text, '{{}}'::jsonb FROM {ORDERS} o"
        f" WHERE {order_scope} AND o.is_deleted",
        params,
        reopen=True,
    )
    # The transactions with several payments found by one hash of every payment's
    # transaction; only theirs listed.
    found += anomalies_insert(
        A.SEVERAL_PAYMENTS,
        "transactions",
        "SELECT o.legacy_id::text, jsonb_build_object('payments', (SELECT"
        f" array_agg(p.legacy_id ORDER BY p.legacy_id) FROM {PAYMENTS} p"
        f" WHERE p.transaction_legacy_id = o.legacy_id)) FROM {ORDERS} o"
        f" WHERE {order_scope} AND o.legacy_id IN (SELECT transaction_legacy_id"
        f" FROM {PAYMENTS} GROUP BY transaction_legacy_id HAVING count(*) > 1)",
        params,
        reopen=True,
    )
    # What each payment in scope says against its transaction, from one join of the payments
    # to the orders (three joins of a million rows each were 2.8 s): no transaction at all; a
    # receiver that is not the transaction's seller (the ledger credits the receiver, the
    # order line names the seller: one seller would be owed what the other is paid out); a
    # transaction not paid through Stripe. Only the few rows with one are kept.
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS _legacy_payment_refs")
        cursor.execute(
            "CREATE TEMPORARY TABLE _legacy_payment_refs ON COMMIT DROP AS"
            " SELECT pay.legacy_id, pay.transaction_legacy_id, pay.receiver_legacy_id,"
            " o.legacy_id IS NULL AS is_orphan, o.listing_author_legacy_id, o.payment_gateway,"
            f" {payment_scope} AS is_payment_in_scope"
            f" FROM {PAYMENTS} pay LEFT JOIN {ORDERS} o ON o.legacy_id = pay.transaction_legacy_id"
            f" WHERE ({payment_scope} OR {order_scope}) AND (o.legacy_id IS NULL"
            " OR pay.receiver_legacy_id IS DISTINCT FROM o.listing_author_legacy_id"
            f" OR o.payment_gateway <> '{STRIPE_GATEWAY}')",
            params,
        )
    found += anomalies_insert(
        A.ORPHAN_PAYMENT,
        "stripe_payments",
        "SELECT legacy_id::text, jsonb_build_object('transaction_id', transaction_legacy_id)"
        " FROM _legacy_payment_refs WHERE is_orphan AND is_payment_in_scope",
        params,
        reopen=True,
    )
    found += anomalies_insert(
        A.RECEIVER_MISMATCH,
        "stripe_payments",
        "SELECT legacy_id::text, jsonb_build_object('receiver_id', receiver_legacy_id,"
        " 'listing_author_id', listing_author_legacy_id) FROM _legacy_payment_refs"
        " WHERE NOT is_orphan AND receiver_legacy_id IS DISTINCT FROM listing_author_legacy_id",
        params,
        reopen=True,
    )
    found += anomalies_insert(
        A.PAYMENT_GATEWAY_MISMATCH,
        "stripe_payments",
        "SELECT legacy_id::text, jsonb_build_object('payment_gateway', payment_gateway)"
        f" FROM _legacy_payment_refs WHERE payment_gateway <> '{STRIPE_GATEWAY}'",
        params,
        reopen=True,
    )
    for column in ("stripe_charge_id", "stripe_payment_intent_id", "stripe_transfer_id"):
        found += anomalies_insert(
            A.DUPLICATE_STRIPE_ID,
            "stripe_payments",
            # The pattern tested on the ids claimed twice, not on every payment's.
            f"SELECT pay.legacy_id::text, jsonb_build_object('column', '{column}', 'value',"
            f" pay.{column}) FROM {PAYMENTS} pay WHERE pay.{column} IN (SELECT claimed.value"
            f" FROM (SELECT {column} AS value FROM {PAYMENTS} WHERE {column} IS NOT NULL"
            f" GROUP BY {column} HAVING COUNT(*) > 1) claimed"
            f" WHERE {stripe_id_sql(column, 'claimed.value')})",
            params,
            reopen=True,
        )
    return found


def posted_checks_run(*, run_id: int, scope_after: int) -> int:
    """A later run's check of what Gavel posted against what the portal says now: a payment
    whose capture entry an earlier run posted, and whose amounts (sum, either commission,
    Stripe's fee, currency) the portal has changed since. The ledger keeps what was posted
    (entries are append-only: a correction is finance's adjusting entry), verification shows
    the difference, and this anomaly names the payment with both sets of amounts. Checked on
    the payments the run staged and those whose anomaly is still open: one whose amounts match
    the posting again is resolved. Nothing to check on a first run (nothing posted before)."""
    if not scope_after:
        return 0
    kinds = [A.POSTED_AMOUNTS_CHANGED]
    params = {
        "run": run_id,
        "after": scope_after,
        "scope": scope_after,
        "balance": STRIPE_BALANCE,
        "fees": EXPENSE_STRIPE_FEES,
        "commission": REVENUE_COMMISSION,
        "buyer_fee": REVENUE_BUYER_FEE,
    }
    # every open one is in the rows checked: resolved, and opened again where still found
    anomalies_resolve(
        run_id=run_id,
        table="stripe_payments",
        kinds=kinds,
        rows=None,
    )
    return anomalies_insert(
        A.POSTED_AMOUNTS_CHANGED,
        "stripe_payments",
        "SELECT pay.legacy_id::text, jsonb_build_object('posted', jsonb_build_object("
        "'sum_cents', p.sum_cents, 'commission_cents', p.commission_cents,"
        " 'buyer_commission_cents', p.buyer_commission_cents, 'real_fee_cents', p.fee_cents,"
        " 'currency', p.currency), 'portal', jsonb_build_object('sum_cents', pay.sum_cents,"
        " 'commission_cents', pay.commission_cents, 'buyer_commission_cents',"
        " pay.buyer_commission_cents, 'real_fee_cents', pay.real_fee_cents, 'currency',"
        " pay.currency))"
        f" FROM {PAYMENTS} pay JOIN ledger_journalentry e"
        " ON e.reference = 'legacy:stripe_payments:' || pay.legacy_id || ':capture'"
        # the capture entry's lines: the balance takes sum − fee, the fee its own line
        " CROSS JOIN LATERAL (SELECT"
        " COALESCE(sum(po.amount_minor) FILTER (WHERE a.code IN (%(balance)s, %(fees)s)), 0)"
        " AS sum_cents,"
        " COALESCE(-sum(po.amount_minor) FILTER (WHERE a.code = %(commission)s), 0)"
        " AS commission_cents,"
        " COALESCE(-sum(po.amount_minor) FILTER (WHERE a.code = %(buyer_fee)s), 0)"
        " AS buyer_commission_cents,"
        " COALESCE(sum(po.amount_minor) FILTER (WHERE a.code = %(fees)s), 0) AS fee_cents,"
        " min(po.currency) AS currency"
        " FROM ledger_posting po JOIN ledger_ledgeraccount a ON a.id = po.account_id"
        " WHERE po.entry_id = e.id) p"
        # the open ones were just resolved: those resolved by this run
        " WHERE (pay.staged_run_id > %(after)s OR pay.legacy_id IN"
        f" ({anomaly_ids_sql(kinds, 'stripe_payments', or_resolved=True)}))"
        " AND (p.sum_cents, p.commission_cents, p.buyer_commission_cents, p.fee_cents,"
        " p.currency) IS DISTINCT FROM (pay.sum_cents, COALESCE(pay.commission_cents, 0),"
        " COALESCE(pay.buyer_commission_cents, 0), COALESCE(pay.real_fee_cents, 0),"
        " upper(trim(pay.currency)))",
        params,
        reopen=True,
    )


def quarantine_refresh() -> None:
    """Flag orders and payments that carry (or whose order carries) an open blocking anomaly,
    and only those: a flag no open anomaly justifies any more is lifted (the row checks found
    the portal fixed the row, ``row_anomalies_resolve``; or an order held back only by an
    anomaly of ``ORDER_LOAD_ANOMALIES``, flagged before that rule)."""
    params = {"order_load": sorted(str(kind) for kind in ORDER_LOAD_ANOMALIES)}
    blocked = (
        f"SELECT 1 FROM {ANOMALIES} a WHERE a.is_blocking AND a.legacy_table = %(table)s"
        " AND a.legacy_id = {row}.legacy_id::text AND a.kind <> ALL(%(order_load)s)"
        " AND a.resolved_run_id IS NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {ORDERS} o SET is_quarantined = true FROM {ANOMALIES} a"
            " WHERE a.is_blocking AND a.legacy_table = 'transactions'"
            " AND o.legacy_id = a.legacy_id::bigint AND NOT o.is_quarantined"
            " AND a.kind <> ALL(%(order_load)s) AND a.resolved_run_id IS NULL",
            params,
        )
        cursor.execute(
            f"UPDATE {ORDERS} o SET is_quarantined = false WHERE o.is_quarantined"
            f" AND NOT EXISTS ({blocked.format(row='o')})",
            {**params, "table": "transactions"},
        )
        cursor.execute(
            f"UPDATE {PAYMENTS} pay SET is_quarantined = true FROM {ANOMALIES} a"
            " WHERE a.is_blocking AND a.legacy_table = 'stripe_payments'"
            " AND pay.legacy_id = a.legacy_id::bigint AND NOT pay.is_quarantined"
            " AND a.resolved_run_id IS NULL"
        )
        cursor.execute(
            f"UPDATE {PAYMENTS} pay SET is_quarantined = true FROM {ORDERS} o"
            " WHERE o.is_quarantined AND pay.transaction_legacy_id = o.legacy_id"
            " AND NOT pay.is_quarantined"
        )
        cursor.execute(
            f"UPDATE {PAYMENTS} pay SET is_quarantined = false WHERE pay.is_quarantined"
            f" AND NOT EXISTS ({blocked.format(row='pay')})"
            f" AND NOT EXISTS (SELECT 1 FROM {ORDERS} o"
            " WHERE o.legacy_id = pay.transaction_legacy_id AND o.is_quarantined)",
            {**params, "table": "stripe_payments"},
        )
