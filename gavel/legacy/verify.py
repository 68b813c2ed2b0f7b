"""Verification: the legacy database and Gavel side by side, to the cent.

Every row compares a figure computed on the legacy database (its own SQL, nothing shared with
the importer) with the same figure from Gavel (staging tables and the ledger's legacy
entries). Money held back by the quarantine is shown in its own column, so the rule is the same
for every row: ``legacy − gavel − quarantined = 0``.
"""

# SQL here is built from identifiers in this code (tables, columns, state names), never from
# input; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from django.db import connection

from gavel.legacy.connections import LegacyDatabase
from gavel.legacy.ledger_plan import (
    EXPENSE_STRIPE_FEES,
    REVENUE_BUYER_FEE,
    REVENUE_COMMISSION,
    SELLER_PAYABLE_PREFIX,
)
from gavel.legacy.models import ImportRun, VerificationReport
from gavel.legacy.orders import REFERENCE_PREFIX as ORDER_REFERENCE_PREFIX
from gavel.legacy.reader import LegacySource
from gavel.legacy.schema import TABLES
from gavel.legacy.staging import STAGING_MODELS
from gavel.legacy.states import ORDER_LOAD_ANOMALIES
from gavel.legacy.stripe_check import (
    ACCOUNT,
    CHARGE,
    CUSTOMER,
    DESTINATION_PAYMENT,
    INTENT,
    PAYOUT,
    TRANSFER,
    stripe_cross_check,
)


@dataclass(frozen=True, slots=True)
class ReportRow:
    section: str
    key: str
    legacy: int
    gavel: int
    quarantined: int = 0

    @property
    def difference(self) -> int:
        return self.legacy - self.gavel - self.quarantined


Figures = dict[str, int]

# Money columns compared per currency: (legacy table, currency column, money columns).
MONEY_COLUMNS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "stripe_payments",
        "currency",
        (
            "sum_cents",
            "subtotal_cents",
            "commission_cents",
            "buyer_commission_cents",
            "fee_cents",
            "real_fee_cents",
        ),
    ),
    (
        "transactions",
        "unit_price_currency",
        (
            "unit_price_cents",
            "shipping_price_cents",
            "minimum_commission_cents",
            "minimum_buyer_fee_cents",
        ),
    ),
    ("listings", "currency", ("price_cents", "shipping_price_cents")),
)
# Staging column names where they differ from the legacy ones.
STAGED_NAMES = {"current_state": "current_state"}
NET = "(sum_cents - commission_cents - buyer_commission_cents)"


# Staged Stripe transactions (not free) with no order, held back by their quarantine, by an
# open anomaly of the orders load, or by their payment's quarantine (a captured one is an
# order only with its payment): one with no order and none of these is a difference.
_ORDERS_HELD_SQL = (
    "SELECT 'orders', COUNT(*) FROM legacy_legacyorder o"
    " WHERE o.payment_gateway = 'stripe' AND o.current_state IS DISTINCT FROM 'free'"
    " AND NOT EXISTS (SELECT 1 FROM payments_order g"
    " WHERE g.legacy_reference = %s || o.legacy_id)"
    " AND (o.is_quarantined"
    " OR EXISTS (SELECT 1 FROM legacy_legacyanomaly a WHERE a.legacy_table = 'transactions'"
    " AND a.legacy_id = o.legacy_id::text AND a.resolved_run_id IS NULL AND a.kind = ANY(%s))"
    " OR EXISTS (SELECT 1 FROM legacy_legacypayment p"
    " WHERE p.transaction_legacy_id = o.legacy_id AND p.is_quarantined))"
)


def _key(*parts: object) -> str:
    return ":".join("∅" if part is None else str(part) for part in parts)


def _gavel(sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return list(cursor.fetchall())


def _figures(rows: Iterable[tuple[Any, ...]]) -> Figures:
    figures: Figures = defaultdict(int)
    for *parts, value in rows:
        figures[_key(*parts)] += int(value or 0)
    return figures


def _compare(
    section: str,
    legacy: Figures | Future[Figures],
    gavel: Figures,
    quarantined: Figures | None = None,
) -> list[ReportRow]:
    if isinstance(legacy, Future):
        legacy = legacy.result()
    quarantined = quarantined or {}
    keys = sorted(set(legacy) | set(gavel) | set(quarantined))
    return [
        ReportRow(section, key, legacy.get(key, 0), gavel.get(key, 0), quarantined.get(key, 0))
        for key in keys
    ]


def _sum_sql(table: str, currency: str, columns: tuple[str, ...]) -> str:
    """One pass over the table for every money column."""
    sums = ", ".join(f"SUM({column})" for column in columns)
    return f"SELECT UPPER({currency}), {sums} FROM {table} GROUP BY UPPER({currency})"


def _sums_by_column(
    rows: Iterable[tuple[Any, ...]], columns: tuple[str, ...]
) -> dict[str, Figures]:
    by_column: dict[str, Figures] = {column: defaultdict(int) for column in columns}
    for currency, *sums in rows:
        for column, value in zip(columns, sums, strict=True):
            by_column[column][_key(currency)] += int(value or 0)
    return by_column


def _quarantined_payment_figures(
    expression: str, where: str, *, by_seller: bool, step: str = "capture"
) -> Figures:
    """The money the quarantine holds back from a figure: quarantined payments whose entry
    for that figure (``step``: the capture, or the payout) is not in the ledger. A payment
    posted before a later run found its anomaly (a delta) is in the ledger, and counted there
    only; what the portal changed in it since shows as a difference."""
    group = "pay.receiver_legacy_id, UPPER(pay.currency)" if by_seller else "UPPER(pay.currency)"
    return _figures(
        _gavel(
            f"SELECT {group}, SUM({expression}) FROM legacy_legacypayment pay"
            f" WHERE pay.is_quarantined AND {where} AND NOT EXISTS (SELECT 1"
            " FROM ledger_journalentry e WHERE e.reference"
            f" = 'legacy:stripe_payments:' || pay.legacy_id || ':{step}') GROUP BY {group}"
        )
    )


def _seller_people() -> dict[str, str]:
    """Ledger seller account code -> legacy person id."""
    codes = {
        f"{SELLER_PAYABLE_PREFIX}{seller_id}": person
        for seller_id, person in _gavel(
            "SELECT stripe_seller_id, person_legacy_id FROM legacy_legacystripeaccount"
            " WHERE stripe_seller_id IS NOT NULL"
        )
    }
    return codes


def _by_person(figures: Figures, people: dict[str, str]) -> Figures:
    result: Figures = defaultdict(int)
    for key, value in figures.items():
        code, currency = key.rsplit(":", 1)
        if code.startswith(f"{SELLER_PAYABLE_PREFIX}person:"):
            person = code.removeprefix(f"{SELLER_PAYABLE_PREFIX}person:")
        else:
            person = people.get(code, code)
        result[_key(person, currency)] += value
    return result


def verification_rows(source: LegacySource) -> list[ReportRow]:
    """Every row of the report. The legacy side's queries run on the legacy connection in a
    thread, each sent before the Gavel query it is compared with, so both databases work at
    once."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify-legacy") as pool:
        return _rows(_Legacy(source, pool))


class _Legacy:
    """The legacy side, asked ahead: each call sends its query and returns at once."""

    def __init__(self, source: LegacySource, pool: ThreadPoolExecutor) -> None:
        self.source = source
        self.pool = pool

    def count(self, table: str) -> Future[int]:
        return self.pool.submit(self.source.count, table)

    def figures(self, sql: str) -> Future[Figures]:
        return self.pool.submit(lambda: _figures(self.source.query(sql)))

    def sums(self, sql: str, columns: tuple[str, ...]) -> Future[dict[str, Figures]]:
        return self.pool.submit(lambda: _sums_by_column(self.source.query(sql), columns))

    def payments(self, asked: dict[str, tuple[str, str, bool]]) -> Future[dict[str, Figures]]:
        """Each figure ``name: (expression, where, by_seller)`` summed over the payments
        ``where`` selects, by currency (and by seller): all of them from one pass over
        ``stripe_payments``. A figure has a key only where a payment counts towards it."""
        names = list(asked)
        sums = ", ".join(
            f"SUM(CASE WHEN {where} THEN {expression} END),"
            f" SUM(CASE WHEN {where} THEN 1 ELSE 0 END)"
            for expression, where, _ in asked.values()
        )

        def figures() -> dict[str, Figures]:
            result: dict[str, Figures] = {name: defaultdict(int) for name in names}
            for seller, currency, *values in self.source.query(
                f"SELECT receiver_id, UPPER(currency), {sums} FROM stripe_payments"
                " GROUP BY receiver_id, UPPER(currency)"
            ):
                for index, name in enumerate(names):
                    total, counted = values[2 * index], values[2 * index + 1]
                    if counted:
                        key = _key(seller, currency) if asked[name][2] else _key(currency)
                        result[name][key] += int(total or 0)
            return result

        return self.pool.submit(figures)


def _rows(legacy: _Legacy) -> list[ReportRow]:
    rows: list[ReportRow] = []
    # Row counts per table.
    for table in TABLES:
        model = STAGING_MODELS[table]
        legacy_count = legacy.count(table)
        gavel_count = model._default_manager.count()
        rows.append(ReportRow("rows", table, legacy_count.result(), gavel_count))
    # Counts per state.
    rows += _compare(
        "transactions by current_state",
        legacy.figures("SELECT current_state, COUNT(*) FROM transactions GROUP BY current_state"),
        _figures(
            _gavel("SELECT current_state, COUNT(*) FROM legacy_legacyorder GROUP BY current_state")
        ),
    )
    rows += _compare(
        "stripe_payments by status",
        legacy.figures("SELECT status, COUNT(*) FROM stripe_payments GROUP BY status"),
        _figures(_gavel("SELECT status, COUNT(*) FROM legacy_legacypayment GROUP BY status")),
    )
    # Every Stripe transaction that is not free is an order, or held back for a reason an
    # anomaly names (none dropped in silence): legacy − orders − held back = 0.
    rows += _compare(
        "Stripe transactions: orders",
        legacy.figures(
            "SELECT 'orders', COUNT(*) FROM transactions WHERE payment_gateway = 'stripe'"
            " AND (current_state IS NULL OR current_state <> 'free')"
        ),
        _figures(
            _gavel(
                "SELECT 'orders', COUNT(*) FROM payments_order WHERE legacy_reference LIKE %s",
                [f"{ORDER_REFERENCE_PREFIX}%"],
            )
        ),
        _figures(_gavel(_ORDERS_HELD_SQL, [ORDER_REFERENCE_PREFIX, sorted(ORDER_LOAD_ANOMALIES)])),
    )
    # Sums per currency of every money column. Currencies are compared upper-cased: MySQL's
    # case-insensitive collation groups "eur" with "EUR" anyway; unknown codes stay apart.
    for table, currency, columns in MONEY_COLUMNS:
        staging = STAGING_MODELS[table]._meta.db_table
        legacy_sums = legacy.sums(_sum_sql(table, currency, columns), columns)
        gavel_sums = _sums_by_column(_gavel(_sum_sql(staging, currency, columns)), columns)
        for column in columns:
            rows += _compare(
                f"sum {table}.{column} by {currency}",
                legacy_sums.result()[column],
                gavel_sums[column],
            )
    rows += _listing_rows(legacy)
    # The ledger against the legacy funds flow: every figure from one pass over the ledger's
    # legacy entries.
    kept = "status IN ('paid', 'transfered')"
    captured = "stripe_payment_intent_status = 'success'"
    asked_ahead = legacy.payments(
        {
            "transferred": (NET, "status = 'transfered'", True),
            "pending": (NET, "status = 'paid'", True),
            REVENUE_COMMISSION: ("commission_cents", kept, False),
            REVENUE_BUYER_FEE: ("buyer_commission_cents", kept, False),
            EXPENSE_STRIPE_FEES: ("real_fee_cents", captured, False),
            "captured": ("sum_cents", captured, False),
        }
    )
    ledger = _LedgerSums()
    people = _seller_people()
    asked = asked_ahead.result()
    rows += _compare(
        "seller transferred (net, by seller and currency)",
        asked["transferred"],
        _by_person(ledger.sellers(is_payout=True), people),
        _quarantined_payment_figures(NET, "status = 'transfered'", by_seller=True, step="payout"),
    )
    rows += _compare(
        "seller pending (net, by seller and currency)",
        asked["pending"],
        _by_person(ledger.sellers(is_payout=False, sign=-1), people),
        _quarantined_payment_figures(NET, "status = 'paid'", by_seller=True),
    )
    for section, expression, where, account, sign in (
        ("revenue: seller commissions", "commission_cents", kept, REVENUE_COMMISSION, -1),
        ("revenue: buyer fees", "buyer_commission_cents", kept, REVENUE_BUYER_FEE, -1),
        ("expense: Stripe fees", "real_fee_cents", captured, EXPENSE_STRIPE_FEES, 1),
    ):
        rows += _compare(
            section,
            asked[account],
            ledger.account(account, sign=sign),
            _quarantined_payment_figures(expression, where, by_seller=False),
        )
    rows += _compare(
        "captured from buyers",
        asked["captured"],
        ledger.captured(),
        _quarantined_payment_figures("sum_cents", captured, by_seller=False),
    )
    trial = ledger.trial()
    rows += _compare("ledger trial balance (legacy entries)", dict.fromkeys(trial, 0), trial)
    return rows


class _LedgerSums:
    """The ledger's legacy entries summed once, by account, currency, whether the entry is a
    payout, and whether the posting is a capture's credit: every ledger figure of the report
    is a sum of these."""

    def __init__(self) -> None:
        # Grouped by account id, then named: the millions of postings are grouped by small
        # keys (a parallel plan; 5.9 s -> 2.5 s on 5.4 M postings), not by account code text.
        self.sums = _gavel(
            "SELECT a.code, s.currency, s.is_payout, s.is_capture_credit, s.amount FROM"
            " (SELECT p.account_id, p.currency, e.kind = 'legacy_payout' AS is_payout,"
            " e.kind = 'legacy_capture' AND p.amount_minor < 0 AS is_capture_credit,"
            " SUM(p.amount_minor) AS amount"
            " FROM ledger_posting p JOIN ledger_journalentry e ON e.id = p.entry_id"
            " WHERE e.reference LIKE 'legacy:%%' GROUP BY 1, 2, 3, 4) s"
            " JOIN ledger_ledgeraccount a ON a.id = s.account_id"
        )

    def sellers(self, *, is_payout: bool, sign: int = 1) -> Figures:
        """By seller account and currency: payout entries only, or every entry."""
        return _figures(
            (code, currency, sign * amount)
            for code, currency, payout, _, amount in self.sums
            if code.startswith(SELLER_PAYABLE_PREFIX) and (payout or not is_payout)
        )

    def account(self, code: str, *, sign: int) -> Figures:
        return _figures(
            (currency, sign * amount)
            for account, currency, _, _, amount in self.sums
            if account == code
        )

    def captured(self) -> Figures:
        """What buyers paid: the credits of capture entries."""
        return _figures(
            (currency, -amount) for _, currency, _, credit, amount in self.sums if credit
        )

    def trial(self) -> Figures:
        return _figures((currency, amount) for _, currency, _, _, amount in self.sums)


LISTING_FIGURES = ("count", "price_cents", "shipping_price_cents")
# Staged listings held back by the quarantine (a blocking anomaly) and not in the catalogue.
QUARANTINED_LISTINGS = (
    "FROM legacy_legacylisting l WHERE EXISTS (SELECT 1 FROM legacy_legacyanomaly a"
    " WHERE a.legacy_table = 'listings' AND a.legacy_id = l.legacy_id::text AND a.is_blocking"
    " AND a.resolved_run_id IS NULL)"
    " AND NOT EXISTS (SELECT 1 FROM legacy_importedlisting i WHERE i.legacy_id = l.legacy_id)"
)


def _listing_rows(legacy_side: _Legacy) -> list[ReportRow]:
    """Legacy listings against Gavel's catalogue (``ImportedListing``): count, price and
    shipping per currency."""
    figures = "COUNT(*), SUM(price_cents), SUM(shipping_price_cents)"
    asked = legacy_side.sums(
        f"SELECT UPPER(TRIM(currency)), {figures} FROM listings GROUP BY UPPER(TRIM(currency))",
        LISTING_FIGURES,
    )
    gavel = _sums_by_column(
        _gavel(
            "SELECT currency, COUNT(*), SUM(price_minor), SUM(shipping_minor)"
            " FROM legacy_importedlisting GROUP BY currency"
        ),
        LISTING_FIGURES,
    )
    quarantined = _sums_by_column(
        _gavel(
            f"SELECT UPPER(TRIM(l.currency)), {figures} {QUARANTINED_LISTINGS}"
            " GROUP BY UPPER(TRIM(l.currency))"
        ),
        LISTING_FIGURES,
    )
    legacy = asked.result()
    rows: list[ReportRow] = []
    for figure in LISTING_FIGURES:
        rows += _compare(
            f"imported listings: {figure} by currency",
            legacy[figure],
            gavel[figure],
            quarantined[figure],
        )
    return rows


STRIPE_SECTIONS = {
    INTENT: "Stripe cross-check: PaymentIntents",
    CHARGE: "Stripe cross-check: charges",
    DESTINATION_PAYMENT: "Stripe cross-check: payments on sellers' accounts",
    TRANSFER: "Stripe cross-check: transfers",
    PAYOUT: "Stripe cross-check: payouts",
    ACCOUNT: "Stripe cross-check: connected accounts",
    CUSTOMER: "Stripe cross-check: customers",
}


def stripe_rows(*, sample: int) -> list[ReportRow]:
    """The optional Stripe cross-check, as report rows: per kind of Stripe object, checked
    (legacy) vs agreeing (Gavel) and the unanswered ones, then one row per disagreement."""
    result = stripe_cross_check(sample=sample)
    rows = []
    for kind, section in STRIPE_SECTIONS.items():
        checks = [check for check in result.checks if check.kind == kind]
        unanswered = result.unanswered[kind]
        sampled = (
            f"{result.accounts_sampled} Stripe accounts rows"
            if kind in (ACCOUNT, CUSTOMER)
            else f"{result.sampled} payments"
        )
        rows += [
            ReportRow(
                section,
                f"agree (sample of {sampled})",
                len(checks),
                sum(1 for check in checks if not check.problem),
            ),
            ReportRow(section, "unanswered (retry later)", unanswered, unanswered),
        ]
        rows += [
            ReportRow(section, f"{check.legacy_id} {check.object_id}: {check.problem}", 1, 0)
            for check in checks
            if check.problem
        ]
    return rows


def legacy_verify(*, database: LegacyDatabase, stripe_sample: int = 0) -> VerificationReport:
    """Compare, store the report (the admin shows it), and return it. ``stripe_sample`` > 0
    also reads that many payments' Stripe objects through the gateway (``stripe_check``)."""
    with LegacySource(database) as source:
        rows = verification_rows(source)
    if stripe_sample > 0:
        rows += stripe_rows(sample=stripe_sample)
    differences = sum(1 for row in rows if row.difference != 0)
    return VerificationReport.objects.create(
        run=ImportRun.objects.filter(status=ImportRun.Status.COMPLETED).order_by("-pk").first(),
        difference_count=differences,
        rows=[{**asdict(row), "difference": row.difference} for row in rows],
    )
