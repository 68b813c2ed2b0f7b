"""Stage two: load staged legacy rows into Gavel: users, the ledger, the id map.

Only rows staged after ``scope_after`` (the last completed run) are loaded, and every write is
idempotent against a unique constraint (``users_user.legacy_person_id``, the journal entry's
``reference``, the id map's (kind, legacy_id)), so a repeated or resumed load adds nothing.
"""

# SQL here is built from identifiers in this code (tables, columns, state names), never from
# input; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import DatabaseError, connection, transaction

from gavel.auctions.services.customers import CustomerImport, buyer_customers_import
from gavel.common.money import SUPPORTED_CURRENCIES, MoneyError
from gavel.common.planner import hash_joins_only
from gavel.common.references import inserts_checked_in_bulk
from gavel.connect.services import AccountImport, connected_accounts_import
from gavel.ledger.models import JournalEntry, LedgerAccount, Posting
from gavel.ledger.services import LedgerError, Line, entry_post
from gavel.legacy.checks import payments_rechecked
from gavel.legacy.commission import amounts_compute, amounts_expected_sql
from gavel.legacy.indexes import table_filled_by_run
from gavel.legacy.ledger_plan import (
    DISPUTE_HOLDS,
    EXPENSE_STRIPE_FEES,
    REVENUE_BUYER_FEE,
    REVENUE_COMMISSION,
    SELLER_PAYABLE_PREFIX,
    SETTLED_OUTSIDE,
    STRIPE_BALANCE,
    PaymentFacts,
    PlannedEntry,
    payment_entries,
    seller_payable_code,
)
from gavel.legacy.models import ImportRun
from gavel.legacy.reader import Anomaly, stripe_id_sql
from gavel.legacy.staging import anomalies_record
from gavel.legacy.states import CAPTURED_STATES, DISPUTE_STATES, AnomalyKind, LegacyState

logger = logging.getLogger(__name__)

PLACEHOLDER_EMAIL_DOMAIN = "legacy.invalid"


# ---- users ---------------------------------------------------------------------------------


def users_load(*, run: ImportRun, scope_after: int) -> dict[str, int]:
    """People -> users: no password (sign-in by reset link), roles from accounts and orders.

    An email already taken (by a Gavel user, or by an earlier legacy person with the same
    address in another case) is quarantined as ``email_conflict``; that person gets no user
    until staff resolve it. Deleted people become inactive users with a placeholder address.
    Legacy admins are not made staff.
    """
    params: dict[str, Any] = {
        "after": scope_after,
        "run": run.pk,
        "domain": PLACEHOLDER_EMAIL_DOMAIN,
    }
    # Roles come from aggregates computed once (a correlated EXISTS per person would scan the
    # orders once per person).
    candidates = (
        "WITH sellers AS (SELECT person_legacy_id AS person FROM legacy_legacystripeaccount"
        " WHERE stripe_seller_id IS NOT NULL UNION SELECT listing_author_legacy_id"
        " FROM legacy_legacyorder),"
        " buyers AS (SELECT person_legacy_id AS person FROM legacy_legacystripeaccount"
        " WHERE stripe_customer_id IS NOT NULL UNION SELECT starter_legacy_id"
        " FROM legacy_legacyorder)"
        " SELECT p.legacy_id, p.given_name, p.family_name, p.display_name, p.is_deleted,"
        " p.legacy_created_at, p.staged_run_id,"
        " COALESCE(NULLIF(lower(trim(p.email)), ''), 'person-' || p.legacy_id || '@' ||"
        " %(domain)s) AS email,"
        " row_number() OVER (PARTITION BY lower(trim(p.email))"
        " ORDER BY p.legacy_created_at, p.legacy_id) AS email_rank,"
        " s.person IS NOT NULL AS is_seller, b.person IS NOT NULL AS has_bought"
        " FROM legacy_legacyperson p LEFT JOIN sellers s ON s.person = p.legacy_id"
        " LEFT JOIN buyers b ON b.person = p.legacy_id"
    )
    conflict = (
        "(c.email_rank > 1 AND c.email NOT LIKE '%%@' || %(domain)s) OR c.email IN (SELECT"
        " lower(u.email) FROM users_user u WHERE u.legacy_person_id IS NULL) OR c.email IN"
        " (SELECT lower(u.email) FROM users_user u JOIN legacy_legacyperson o"
        " ON o.legacy_id = u.legacy_person_id WHERE o.staged_run_id <= %(after)s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO legacy_legacyanomaly (kind, legacy_table, legacy_id, is_blocking,"
            " details, run_id, detected_at)"
            f" SELECT 'email_conflict', 'people', c.legacy_id, true,"
            " jsonb_build_object('email', c.email), %(run)s, now()"
            f" FROM ({candidates}) c WHERE c.staged_run_id > %(after)s AND ({conflict})"
            " ON CONFLICT DO NOTHING",
            params,
        )
        conflicts = cursor.rowcount
        cursor.execute(
            "INSERT INTO users_user (password, is_superuser, username, first_name, last_name,"
            " email, is_staff, is_active, date_joined, display_name, is_buyer, is_seller,"
            " legacy_person_id)"
            " SELECT '!' || md5(random()::text || c.legacy_id), false, left(c.email, 150),"
            " left(COALESCE(c.given_name, ''), 150), left(COALESCE(c.family_name, ''), 150),"
            " c.email, false, NOT c.is_deleted, c.legacy_created_at,"
            " left(COALESCE(c.display_name, ''), 150), c.has_bought OR NOT c.is_seller,"
            " c.is_seller, c.legacy_id"
            f" FROM ({candidates}) c WHERE c.staged_run_id > %(after)s AND NOT ({conflict})"
            " ON CONFLICT (legacy_person_id) DO UPDATE SET username = EXCLUDED.username,"
            " first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,"
            " email = EXCLUDED.email, is_active = EXCLUDED.is_active,"
            " display_name = EXCLUDED.display_name, is_buyer = EXCLUDED.is_buyer,"
            " is_seller = EXCLUDED.is_seller"
            " WHERE (users_user.username, users_user.first_name, users_user.last_name,"
            " users_user.email, users_user.is_active, users_user.display_name,"
            " users_user.is_buyer, users_user.is_seller) IS DISTINCT FROM (EXCLUDED.username,"
            " EXCLUDED.first_name, EXCLUDED.last_name, EXCLUDED.email, EXCLUDED.is_active,"
            " EXCLUDED.display_name, EXCLUDED.is_buyer, EXCLUDED.is_seller)",
            params,
        )
        changed = cursor.rowcount
    return {"users_changed": changed, "email_conflicts": conflicts}


# ---- connected accounts ------------------------------------------------------------------

CONNECT_BATCH_SIZE = 1000


def connected_accounts_load(*, run: ImportRun, scope_after: int) -> dict[str, int]:
    """Sellers' Stripe accounts -> ``gavel.connect`` through its import service
    (``connected_accounts_import``): new rows are ``unsynced`` until a refresh task (one per
    batch) reads them from Stripe through the gateway. Conflicts (the user already has another
    account, or the account belongs to another user) are quarantined as ``account_conflict``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.legacy_id, u.id, a.stripe_seller_id FROM legacy_legacystripeaccount a"
            " JOIN users_user u ON u.legacy_person_id = a.person_legacy_id"
            " WHERE a.staged_run_id > %s"
            f" AND {stripe_id_sql('stripe_seller_id', 'a.stripe_seller_id')}"
            " ORDER BY a.legacy_id",
            [scope_after],
        )
        rows = cursor.fetchall()
    legacy_ids = {stripe_id: legacy_id for legacy_id, _, stripe_id in rows}
    created = already = 0
    conflicts: list[Anomaly] = []
    for start in range(0, len(rows), CONNECT_BATCH_SIZE):
        batch = [
            AccountImport(user_id=user_id, stripe_account_id=stripe_id)
            for _, user_id, stripe_id in rows[start : start + CONNECT_BATCH_SIZE]
        ]
        result = connected_accounts_import(accounts=batch, is_refresh_batched=True)
        created += result.created
        already += result.already_imported
        conflicts += [
            Anomaly(
                AnomalyKind.ACCOUNT_CONFLICT,
                "stripe_accounts",
                str(legacy_ids[item.stripe_account_id]),
                {"stripe_account_id": item.stripe_account_id, "user_id": item.user_id},
            )
            for item in result.conflicts
        ]
    anomalies_record(anomalies=conflicts, run=run)
    return {"created": created, "already_imported": already, "conflicts": len(conflicts)}


def buyer_customers_load(*, run: ImportRun, scope_after: int) -> dict[str, int]:
    """Buyers' Stripe customer ids -> ``auctions.BuyerCustomer`` through its import service
    (``buyer_customers_import``), so Gavel charges the customer the buyer already has. A
    conflict (the user already has another customer, or the customer is another user's) is
    reported as ``customer_conflict`` (not blocking: Gavel creates a customer when needed)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.legacy_id, u.id, a.stripe_customer_id FROM legacy_legacystripeaccount a"
            " JOIN users_user u ON u.legacy_person_id = a.person_legacy_id"
            " WHERE a.staged_run_id > %s"
            f" AND {stripe_id_sql('stripe_customer_id', 'a.stripe_customer_id')}"
            " ORDER BY a.legacy_id",
            [scope_after],
        )
        rows = cursor.fetchall()
    legacy_ids = {(user_id, customer): legacy_id for legacy_id, user_id, customer in rows}
    created = already = 0
    conflicts: list[Anomaly] = []
    for start in range(0, len(rows), CONNECT_BATCH_SIZE):
        result = buyer_customers_import(
            customers=[
                CustomerImport(user_id=user_id, stripe_customer_id=customer)
                for _, user_id, customer in rows[start : start + CONNECT_BATCH_SIZE]
            ]
        )
        created += result.created
        already += result.already_imported
        conflicts += [
            Anomaly(
                AnomalyKind.CUSTOMER_CONFLICT,
                "stripe_accounts",
                str(legacy_ids[(item.user_id, item.stripe_customer_id)]),
                {"stripe_customer_id": item.stripe_customer_id, "user_id": item.user_id},
            )
            for item in result.conflicts
        ]
    anomalies_record(anomalies=conflicts, run=run)
    return {"created": created, "already_imported": already, "conflicts": len(conflicts)}


# ---- the ledger ----------------------------------------------------------------------------

_SELLER_ID_VALID = stripe_id_sql("stripe_seller_id", "a.stripe_seller_id")
CAPTURED = ", ".join(f"'{state.value}'" for state in sorted(CAPTURED_STATES))
# Each person's Stripe account as a seller: the first valid ``acct_`` id of their accounts.
# Built in a page's transaction (``seller_accounts_prepare``) for the ledger and orders pages
# to join, instead of a lookup per row; inside ``seller_accounts_kept`` (a load lane) built by
# the lane's first page and kept for the rest.
SELLER_ACCOUNTS_SQL = f"""
INSERT INTO _seller_accounts
SELECT DISTINCT ON (a.person_legacy_id) a.person_legacy_id, a.stripe_seller_id
FROM legacy_legacystripeaccount a
WHERE a.person_legacy_id IS NOT NULL AND {_SELLER_ID_VALID}
ORDER BY a.person_legacy_id, a.legacy_id
"""
_seller_accounts_lane = threading.local()


@contextmanager
def seller_accounts_kept() -> Iterator[None]:
    """For the block, on this thread's connection: ``_seller_accounts`` built once and kept
    from one page's transaction to the next, then dropped. For stage two's lanes: staged
    accounts change only in stage one, and building the table for every page cost 0.4 s a
    page on one million payments (125,000 accounts sorted each time, 21 pages)."""
    _seller_accounts_lane.kept = True
    try:
        yield
    finally:
        _seller_accounts_lane.kept = False
        if not connection.needs_rollback:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("DROP TABLE IF EXISTS _seller_accounts")
            except DatabaseError:  # an aborted transaction or a closed connection: gone with it
                logger.debug("legacy import: _seller_accounts left to the session's end")


def seller_accounts_prepare() -> None:
    """``_seller_accounts`` for the rest of the caller's transaction (inside
    ``seller_accounts_kept``: for the rest of the block, built only when this connection does
    not hold it, e.g. after a page's transaction that built it rolled back)."""
    kept = getattr(_seller_accounts_lane, "kept", False)
    with connection.cursor() as cursor:
        if kept:
            cursor.execute("SELECT to_regclass('pg_temp._seller_accounts') IS NOT NULL")
            (exists,) = cursor.fetchone()
            if exists:
                return
        cursor.execute("DROP TABLE IF EXISTS _seller_accounts")  # a dry run's one transaction
        cursor.execute(
            "CREATE TEMPORARY TABLE _seller_accounts (person text PRIMARY KEY,"
            " stripe_seller_id text)" + (" ON COMMIT PRESERVE ROWS" if kept else " ON COMMIT DROP")
        )
        cursor.execute(SELLER_ACCOUNTS_SQL)
        cursor.execute("ANALYZE _seller_accounts")


# Each staged payment with its transaction's history (final state, when it was paid, disputed,
# resolved) and its seller's account: shared by the Python plan's facts and the SQL ledger
# (which reads the account from ``_seller_accounts``, the same rule).
_PAYMENT_HISTORY_JOINS = """
FROM legacy_legacypayment pay
JOIN legacy_legacyorder o ON o.legacy_id = pay.transaction_legacy_id
CROSS JOIN LATERAL (
    -- the last step read off the history's index (an ordered aggregate sorted each payment's
    -- steps on its own: twice the time on a million payments)
    SELECT (SELECT l.to_state FROM legacy_legacyordertransition l
            WHERE l.transaction_legacy_id = pay.transaction_legacy_id
            ORDER BY l.sort_key DESC, l.legacy_id DESC LIMIT 1) AS final_state,
           min(t.legacy_created_at) FILTER (WHERE t.to_state = 'paid') AS paid_at,
           min(t.legacy_created_at) FILTER (WHERE t.to_state = 'disputed') AS disputed_at,
           max(t.legacy_created_at) FILTER (
               WHERE t.to_state IN ('refunded', 'dismissed', 'canceled')) AS resolved_at
    FROM legacy_legacyordertransition t WHERE t.transaction_legacy_id = pay.transaction_legacy_id
    -- a fence: the row is computed once per payment (pulled up, the last step's lookup ran
    -- once for the filter on it and again for the output: 0.14 s of each page's 1.0 s)
    OFFSET 0
) h
"""
_SELLER_ACCOUNT_LOOKUP = f"""LEFT JOIN LATERAL (
    SELECT a.stripe_seller_id FROM legacy_legacystripeaccount a
    WHERE a.person_legacy_id = pay.receiver_legacy_id
      AND {_SELLER_ID_VALID}
    ORDER BY a.legacy_id LIMIT 1
) acct ON true
"""
FACTS_SQL = f"""
SELECT pay.legacy_id, h.final_state, pay.status, upper(trim(pay.currency)), pay.sum_cents,
       pay.commission_cents, pay.buyer_commission_cents, pay.real_fee_cents,
       acct.stripe_seller_id, pay.receiver_legacy_id, h.paid_at, h.disputed_at, h.resolved_at,
       pay.transfered_at, pay.legacy_created_at, pay.subtotal_cents,
       o.unit_price_cents, o.listing_quantity, o.shipping_price_cents, o.commission_from_seller,
       o.minimum_commission_cents, o.commission_from_buyer, o.minimum_buyer_fee_cents
{_PAYMENT_HISTORY_JOINS}{_SELLER_ACCOUNT_LOOKUP}
WHERE pay.legacy_id > %(after_key)s AND __SCOPE__ AND NOT pay.is_quarantined
  AND h.final_state IN ({CAPTURED})
ORDER BY pay.legacy_id
LIMIT %(limit)s
"""


def _payments_scope(scope_after: int) -> str:
    """The payments a run posts: all on a first run; later, those it staged, or whose
    transaction or history it staged (a dispute moves the transaction, not the payment), and
    those its reference checks released (``payments_rechecked``: unchanged in the portal, but
    the person, the transaction or the other payment that held them back was fixed)."""
    if not scope_after:
        return "TRUE"
    return (
        "(pay.staged_run_id > %(scope)s OR pay.transaction_legacy_id IN (SELECT legacy_id"
        " FROM legacy_legacyorder WHERE staged_run_id > %(scope)s)"
        " OR pay.transaction_legacy_id IN (SELECT transaction_legacy_id"
        f" FROM legacy_legacyordertransition WHERE staged_run_id > %(scope)s)"
        f" OR {payments_rechecked(scope_after)})"
    )


@dataclass(frozen=True, slots=True)
class LedgerPage:
    """One page of captured payments, planned: what to post and what to report."""

    last_key: int
    payments: int
    entries: list[PlannedEntry]
    anomalies: list[Anomaly]


def _facts(row: Sequence[Any]) -> tuple[PaymentFacts, Anomaly | None]:
    (legacy_id, final_state, status, currency, sum_cents, commission, buyer_commission) = row[:7]
    (real_fee, seller_id, receiver, paid_at, disputed_at, resolved_at, transfered_at) = row[7:14]
    created_at, subtotal = row[14], row[15]
    terms = row[16:]
    facts = PaymentFacts(
        legacy_id=legacy_id,
        final_state=final_state,
        status=status,
        currency=currency,
        sum_cents=sum_cents,
        commission_cents=commission,
        buyer_commission_cents=buyer_commission,
        real_fee_cents=real_fee,
        seller_account=seller_payable_code(stripe_seller_id=seller_id, person_legacy_id=receiver),
        paid_at=paid_at,
        disputed_at=disputed_at,
        resolved_at=resolved_at,
        transfered_at=transfered_at,
        fallback_at=created_at,
    )
    return facts, _amount_anomaly(
        legacy_id, (sum_cents, subtotal, commission, buyer_commission), terms
    )


def _amount_anomaly(
    legacy_id: int, stored: tuple[int, int, int, int], terms: Sequence[Any]
) -> Anomaly | None:
    """The portal's own rules, applied again: a payment whose amounts they do not give."""
    unit_price, quantity, shipping, seller_pct, seller_min, buyer_pct, buyer_min = terms
    if unit_price is None:
        return None
    try:
        expected = amounts_compute(
            unit_price_cents=unit_price,
            quantity=1 if quantity is None else quantity,
            shipping_price_cents=shipping,
            commission_from_seller=seller_pct,
            minimum_commission_cents=seller_min,
            commission_from_buyer=buyer_pct,
            minimum_buyer_fee_cents=buyer_min,
        )
    except MoneyError as error:
        # Terms the rules refuse (quarantined by the transaction's row checks; a payment of
        # such a transaction gets here only if those missed it): listed, never a crash.
        return Anomaly(
            AnomalyKind.AMOUNT_MISMATCH,
            "stripe_payments",
            str(legacy_id),
            {"terms_refused": str(error)},
        )
    computed = (
        expected.sum_cents,
        expected.subtotal_cents,
        expected.seller_commission_cents,
        expected.buyer_commission_cents,
    )
    if computed == stored:
        return None
    names = ("sum_cents", "subtotal_cents", "commission_cents", "buyer_commission_cents")
    return Anomaly(
        AnomalyKind.AMOUNT_MISMATCH,
        "stripe_payments",
        str(legacy_id),
        {
            name: {"stored": got, "portal_rules": want}
            for name, got, want in zip(names, stored, computed, strict=True)
            if got != want
        },
    )


def ledger_page_plan(*, scope_after: int, after_key: int, limit: int) -> LedgerPage | None:
    """Read one page of captured payments and plan their entries (reads only); None when no
    payment is left after ``after_key``."""
    with connection.cursor() as cursor:
        cursor.execute(
            FACTS_SQL.replace("__SCOPE__", _payments_scope(scope_after)),
            {"after_key": after_key, "scope": scope_after, "limit": limit},
        )
        rows = cursor.fetchall()
    if not rows:
        return None
    planned: list[PlannedEntry] = []
    anomalies: list[Anomaly] = []
    for row in rows:
        facts, anomaly = _facts(row)
        if anomaly is not None:
            anomalies.append(anomaly)
        if facts.currency not in SUPPORTED_CURRENCIES:  # quarantined upstream; never posted
            continue
        planned += payment_entries(facts)
    return LedgerPage(int(rows[-1][0]), len(rows), planned, anomalies)


def ledger_page_post(*, page: LedgerPage, run: ImportRun, via_services: bool) -> int:
    """Post a planned page and quarantine its anomalies, in one transaction."""
    post: Callable[[Sequence[PlannedEntry]], int] = (
        entries_post_via_services if via_services else entries_post_bulk
    )
    with transaction.atomic():
        posted = post(page.entries)
        anomalies_record(anomalies=page.anomalies, run=run)
    return posted


def entries_post_via_services(entries: Sequence[PlannedEntry]) -> int:
    """One ``entry_post`` per entry: the reference path, used to prove the bulk path equal."""
    posted = 0
    for planned in entries:
        _, created = entry_post(
            reference=planned.reference,
            kind=planned.kind,
            lines=planned.lines,
            occurred_at=planned.occurred_at,
        )
        posted += created
    return posted


_account_ids: dict[str, int] = {}


def _lines_checked(lines: Sequence[Line]) -> list[Line]:
    """``entry_post``'s rule: zero lines dropped, every currency sums to zero."""
    kept = [line for line in lines if line.amount_minor != 0]
    totals: dict[str, int] = defaultdict(int)
    for line in kept:
        totals[line.currency] += line.amount_minor
    if not kept or any(totals.values()):
        raise LedgerError(f"Entry does not balance: {dict(totals)}")
    return kept


def _account_ids_ensure(wanted: dict[str, LedgerAccount.Kind]) -> dict[str, int]:
    missing = {code: kind for code, kind in wanted.items() if code not in _account_ids}
    if missing:
        LedgerAccount.objects.bulk_create(
            [LedgerAccount(code=code, kind=kind) for code, kind in missing.items()],
            ignore_conflicts=True,
        )
        for account_id, code in LedgerAccount.objects.filter(code__in=missing).values_list(
            "id", "code"
        ):
            _account_ids[code] = account_id
    return _account_ids


def entries_post_bulk(entries: Sequence[PlannedEntry]) -> int:
    """``entry_post`` for many entries at once, with the same guarantees: each entry balanced
    (checked here and by the ledger's per-statement trigger), one entry per reference (a reference
    already posted is skipped by ``ON CONFLICT DO NOTHING``, its postings too)."""
    if not entries:
        return 0
    checked = [(planned, _lines_checked(planned.lines)) for planned in entries]
    accounts = _account_ids_ensure(
        {line.account_code: line.account_kind for _, lines in checked for line in lines}
    )
    now = datetime.now().astimezone()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_journalentry (reference, kind, description, occurred_at,"
            " created_at) SELECT r, k, '', o, %s FROM unnest(%s::text[], %s::text[],"
            " %s::timestamptz[]) AS e(r, k, o) ON CONFLICT (reference) DO NOTHING"
            " RETURNING id, reference",
            [
                now,
                [planned.reference for planned, _ in checked],
                [planned.kind for planned, _ in checked],
                [planned.occurred_at for planned, _ in checked],
            ],
        )
        entry_ids = {reference: entry_id for entry_id, reference in cursor.fetchall()}
        if not entry_ids:
            return 0
        with cursor.cursor.copy(
            "COPY ledger_posting (entry_id, account_id, amount_minor, currency) FROM STDIN"
        ) as copy:
            for planned, lines in checked:
                entry_id = entry_ids.get(planned.reference)
                if entry_id is None:
                    continue
                for line in lines:
                    copy.write_row(
                        (entry_id, accounts[line.account_code], line.amount_minor, line.currency)
                    )
    return len(entry_ids)


def account_cache_clear() -> None:
    """Forget cached ledger account ids (tests truncate the ledger between runs)."""
    _account_ids.clear()


# ---- the ledger in SQL (the default path) --------------------------------------------------
#
# The same entries as ``ledger_plan.payment_entries`` (a test proves the ledgers identical),
# built set-based from the staging tables a page of payments at a time: facts, then one row
# per posting line, then the entries (``ON CONFLICT (reference) DO NOTHING``) and their
# postings in one INSERT, so the ledger's statement-level balance trigger checks every entry.

_FACTS_PAGE_SQL = f"""
CREATE TEMPORARY TABLE _ledger_facts ON COMMIT DROP AS
SELECT pay.legacy_id, h.final_state, pay.status, upper(trim(pay.currency)) AS currency,
       pay.sum_cents, pay.commission_cents, pay.buyer_commission_cents,
       COALESCE(pay.real_fee_cents, 0) AS fee_cents,
       pay.sum_cents - pay.commission_cents - pay.buyer_commission_cents AS net_cents,
       '{SELLER_PAYABLE_PREFIX}' || COALESCE(acct.stripe_seller_id,
                                            'person:' || pay.receiver_legacy_id) AS seller,
       COALESCE(h.paid_at, pay.legacy_created_at) AS paid_at, h.disputed_at, h.resolved_at,
       pay.transfered_at, pay.subtotal_cents, o.unit_price_cents, o.listing_quantity,
       o.shipping_price_cents, o.commission_from_seller, o.minimum_commission_cents,
       o.commission_from_buyer, o.minimum_buyer_fee_cents
{_PAYMENT_HISTORY_JOINS}LEFT JOIN _seller_accounts acct ON acct.person = pay.receiver_legacy_id
WHERE pay.legacy_id > %(after)s AND pay.legacy_id <= %(last)s AND __SCOPE__
  AND NOT pay.is_quarantined AND h.final_state IN ({CAPTURED})
  -- the page's transactions lie between these: a range of the orders' index to read, not
  -- every staged order (the bounds are the whole table when ids do not follow each other);
  -- "+ 0" keeps min/max reading the page's payments, not walking the transaction index;
  -- quarantined payments (orphans name transactions that do not exist) post nothing
  AND o.legacy_id BETWEEN
      (SELECT min(transaction_legacy_id + 0) FROM legacy_legacypayment
       WHERE legacy_id > %(after)s AND legacy_id <= %(last)s AND NOT is_quarantined)
      AND (SELECT max(transaction_legacy_id + 0) FROM legacy_legacypayment
           WHERE legacy_id > %(after)s AND legacy_id <= %(last)s AND NOT is_quarantined)
"""

_DISPUTES = ", ".join(f"'{state.value}'" for state in sorted(DISPUTE_STATES))
_ASSET, _LIABILITY = LedgerAccount.Kind.ASSET.value, LedgerAccount.Kind.LIABILITY.value
_REVENUE, _EXPENSE = LedgerAccount.Kind.REVENUE.value, LedgerAccount.Kind.EXPENSE.value
# The capture's seller, commission and buyer-fee lines reversed (``ledger_plan``'s
# ``reversal``): a lost dispute and a refund settled outside the portal both begin with them.
_REVERSAL: tuple[tuple[str, str, str], ...] = (
    ("f.seller", _LIABILITY, "f.net_cents"),
    (f"'{REVENUE_COMMISSION}'", _REVENUE, "f.commission_cents"),
    (f"'{REVENUE_BUYER_FEE}'", _REVENUE, "f.buyer_commission_cents"),
)
# ``ledger_plan.payment_entries`` as data: (position, step, when it happened, whether it
# happened, its lines as (account, account kind, amount: debit positive, credit negative)).
_STEP_LINES: tuple[tuple[int, str, str, str, tuple[tuple[str, str, str], ...]], ...] = (
    (
        1,
        "capture",
        "f.paid_at",
        "true",
        (
            (f"'{STRIPE_BALANCE}'", _ASSET, "f.sum_cents - f.fee_cents"),
            (f"'{EXPENSE_STRIPE_FEES}'", _EXPENSE, "f.fee_cents"),
            ("f.seller", _LIABILITY, "-f.net_cents"),
            (f"'{REVENUE_COMMISSION}'", _REVENUE, "-f.commission_cents"),
            (f"'{REVENUE_BUYER_FEE}'", _REVENUE, "-f.buyer_commission_cents"),
        ),
    ),
    (
        2,
        "dispute_opened",
        "f.disputed_at",
        f"f.final_state IN ({_DISPUTES})",
        (
            (f"'{DISPUTE_HOLDS}'", _ASSET, "f.sum_cents"),
            (f"'{STRIPE_BALANCE}'", _ASSET, "-f.sum_cents"),
        ),
    ),
    (
        3,
        "dispute_lost",
        "f.resolved_at",
        f"f.final_state = '{LegacyState.REFUNDED.value}'",
        (*_REVERSAL, (f"'{DISPUTE_HOLDS}'", _ASSET, "-f.sum_cents")),
    ),
    (
        3,
        "dispute_won",
        "f.resolved_at",
        f"f.final_state = '{LegacyState.DISMISSED.value}'",
        (
            (f"'{STRIPE_BALANCE}'", _ASSET, "f.sum_cents"),
            (f"'{DISPUTE_HOLDS}'", _ASSET, "-f.sum_cents"),
        ),
    ),
    (
        3,
        "refund_outside",
        "f.resolved_at",
        f"f.final_state = '{LegacyState.CANCELED.value}'",
        (*_REVERSAL, (f"'{SETTLED_OUTSIDE}'", _LIABILITY, "-f.sum_cents")),
    ),
    (
        4,
        "payout",
        "f.transfered_at",
        "f.status = 'transfered'",
        (
            ("f.seller", _LIABILITY, "f.net_cents"),
            (f"'{STRIPE_BALANCE}'", _ASSET, "-f.net_cents"),
        ),
    ),
)


def _step_select(
    position: int, step: str, at: str, happened: str, *, columns: str = "", join: str = ""
) -> str:
    """One step's journal entry for every fact it happened to (``columns`` and ``join`` add
    to each row)."""
    return (
        f"SELECT f.legacy_id, {position} AS position,"
        f" 'legacy:stripe_payments:' || f.legacy_id || ':{step}' AS reference,"
        f" 'legacy_{step}' AS kind, COALESCE({at}, f.paid_at) AS occurred_at{columns}"
        f" FROM _ledger_facts f{join} WHERE ({happened}) AND f.currency = ANY(%(currencies)s)"
    )


def _step_arrays(lines: tuple[tuple[str, str, str], ...]) -> tuple[str, str, str]:
    """One step's posting lines as three SQL arrays: account codes, account kinds, amounts."""
    codes = ", ".join(code for code, _, _ in lines)
    kinds = ", ".join(f"'{kind}'" for _, kind, _ in lines)
    amounts = ", ".join(amount for _, _, amount in lines)
    return f"ARRAY[{codes}]::text[]", f"ARRAY[{kinds}]::text[]", f"ARRAY[{amounts}]::bigint[]"


# The page's entries in posting order. Each has a line that is not zero: the page refuses an
# entry whose lines all are before it writes one (``ledger_page_load``).
_ENTRIES_PAGE_SQL = " UNION ALL ".join(
    _step_select(position, step, at, happened) for position, step, at, happened, _ in _STEP_LINES
)
# ``entry_post``'s rule, read off the facts without writing the lines anywhere: the first
# entry of the page whose lines do not sum to zero, or are all zero (the balance trigger
# checks the sums again). One currency an entry: its payment's.
_REFUSED_ENTRY_SQL = (
    "SELECT e.legacy_id, e.step FROM ("
    + " UNION ALL ".join(
        f"SELECT f.legacy_id, '{step}' AS step, {_step_arrays(lines)[2]} AS amounts"
        f" FROM _ledger_facts f WHERE ({happened}) AND f.currency = ANY(%(currencies)s)"
        for _, step, _, happened, lines in _STEP_LINES
    )
    + ") e WHERE (SELECT sum(a) <> 0 OR bool_and(a = 0) FROM unnest(e.amounts) a) LIMIT 1"
)


def _accounts_page_sql() -> str:
    """The accounts the page posts to that the ledger does not have yet: each code with a line
    that is not zero. Per code of ``_STEP_LINES``, the facts a line of it is not zero for:
    a seller's (a column of the facts) read off the page's facts, a fixed account's only
    looked for (``EXISTS``), without unnesting every line."""
    lines_of: dict[tuple[str, str], list[str]] = defaultdict(list)
    for _, _, _, happened, lines in _STEP_LINES:
        for code, kind, amount in lines:
            lines_of[code, kind].append(f"(({happened}) AND {amount} <> 0)")
    wanted = []
    for (code, kind), conditions in lines_of.items():
        condition = f"f.currency = ANY(%(currencies)s) AND ({' OR '.join(conditions)})"
        if code.startswith("'"):  # a fixed account: is it posted to at all?
            wanted.append(
                f"SELECT {code}, '{kind}' WHERE EXISTS (SELECT 1 FROM _ledger_facts f WHERE"
                f" {condition})"
            )
        else:  # an expression over the facts (a seller's account): each one posted to
            wanted.append(
                f"SELECT DISTINCT {code}, '{kind}' FROM _ledger_facts f WHERE {condition}"
            )
    return (
        "INSERT INTO ledger_ledgeraccount (code, kind, description, created_at)"
        " SELECT l.code, l.account_kind, '', %(now)s FROM ("
        + " UNION ALL ".join(wanted)
        + ") l(code, account_kind)"
        " WHERE NOT EXISTS (SELECT 1 FROM ledger_ledgeraccount a WHERE a.code = l.code)"
        " ON CONFLICT (code) DO NOTHING"
    )


_ACCOUNTS_PAGE_SQL = _accounts_page_sql()


def _by_kind(arrays: Sequence[str]) -> str:
    """One of each step's arrays, chosen by the posted entry's kind."""
    cases = " ".join(
        f"WHEN 'legacy_{step}' THEN {array}"
        for (_, step, _, _, _), array in zip(_STEP_LINES, arrays, strict=True)
    )
    return f"CASE p.kind {cases} END"


# Each entry the page posted, with its lines unnested from its step's arrays: the lines are
# computed here, from the facts, and never written to a table of their own.
_POSTING_CODES = _by_kind([_step_arrays(lines)[0] for *_, lines in _STEP_LINES])
_POSTING_AMOUNTS = _by_kind([_step_arrays(lines)[2] for *_, lines in _STEP_LINES])
_POSTINGS_PAGE_SQL = (
    "INSERT INTO ledger_posting (entry_id, account_id, amount_minor, currency)"
    " SELECT p.entry_id, a.id, l.amount_minor, f.currency FROM _ledger_posted p"
    " JOIN _ledger_facts f ON f.legacy_id = p.legacy_id"
    f" CROSS JOIN LATERAL unnest({_POSTING_CODES}, {_POSTING_AMOUNTS}) AS l(code, amount_minor)"
    " JOIN ledger_ledgeraccount a ON a.code = l.code"
    " WHERE l.amount_minor <> 0 ORDER BY p.entry_id"
)

# The page's payments whose stored amounts the portal's rules might not give: those the SQL
# form of the rules (``commission.amounts_expected_sql``) does not find equal, which
# ``_amount_anomaly`` then computes again in Python, the reference.
_AMOUNT_TERMS_SQL = f"""
SELECT f.legacy_id, f.sum_cents, f.subtotal_cents, f.commission_cents,
       f.buyer_commission_cents, f.unit_price_cents, f.listing_quantity,
       f.shipping_price_cents, f.commission_from_seller, f.minimum_commission_cents,
       f.commission_from_buyer, f.minimum_buyer_fee_cents
FROM _ledger_facts f{
    amounts_expected_sql(
        unit_price="f.unit_price_cents",
        quantity="f.listing_quantity",
        shipping="f.shipping_price_cents",
        seller_percent="f.commission_from_seller",
        seller_minimum="f.minimum_commission_cents",
        buyer_percent="f.commission_from_buyer",
        buyer_minimum="f.minimum_buyer_fee_cents",
    )
}
WHERE f.unit_price_cents IS NOT NULL
  AND (expected.is_valid AND (f.sum_cents, f.subtotal_cents, f.commission_cents,
       f.buyer_commission_cents) = (expected.sum_cents, expected.subtotal_cents,
       expected.seller_commission_cents, expected.buyer_commission_cents)) IS NOT TRUE
ORDER BY f.legacy_id
"""


@dataclass(frozen=True, slots=True)
class LedgerPageResult:
    last_key: int
    read: int
    posted: int


def key_split(*, rows: str, key: str, params: dict[str, Any], share: float) -> int:
    """The ``key`` that leaves about ``share`` of ``rows`` (``FROM … WHERE …`` SQL with
    ``params``) after it (0: no row), so that two connections can load the two ranges side
    by side. The same for every call while staging does not change: a resumed run splits
    where it did."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT percentile_disc(%(at)s) WITHIN GROUP (ORDER BY {key}) {rows}",
            {**params, "at": 1 - share},
        )
        (found,) = cursor.fetchone()
    return int(found or 0)


def key_page_bounds(
    *,
    rows: str,
    key: str,
    params: dict[str, Any],
    after_key: int,
    limit: int,
    until_key: int | None = None,
) -> tuple[int, int]:
    """The last ``key`` of the next page of ``rows`` (``FROM … WHERE …`` SQL with ``params``)
    after ``after_key`` (up to ``until_key`` when given) and how many rows it holds ((0, 0):
    none)."""
    until = "" if until_key is None else f" AND {key} <= %(until)s"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT max(k), count(*) FROM (SELECT {key} AS k {rows}"
            f" AND {key} > %(after)s{until} ORDER BY {key} LIMIT %(limit)s) page",
            {**params, "after": after_key, "until": until_key, "limit": limit},
        )
        last, count = cursor.fetchone()
    return (int(last), int(count)) if count else (0, 0)


def _payments_posted(scope_after: int) -> str:
    """The payments a run posts, as ``key_split`` and ``key_page_bounds`` take them."""
    return (
        "FROM legacy_legacypayment pay"
        f" WHERE NOT pay.is_quarantined AND {_payments_scope(scope_after)}"
    )


def ledger_split_key(*, scope_after: int, share: float) -> int:
    """The payment id after which about ``share`` of the payments to post lie (``key_split``)."""
    return key_split(
        rows=_payments_posted(scope_after),
        key="pay.legacy_id",
        params={"scope": scope_after},
        share=share,
    )


def ledger_page_load(
    *, run: ImportRun, scope_after: int, after_key: int, limit: int, until_key: int | None = None
) -> LedgerPageResult | None:
    """Post the next page of captured payments after ``after_key`` (up to ``until_key`` when
    given) and quarantine their amount anomalies, inside the caller's transaction; None when
    no payment is left."""
    last, read = key_page_bounds(
        rows=_payments_posted(scope_after),
        key="pay.legacy_id",
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
    now = datetime.now().astimezone()
    # Foreign keys checked for the page in one statement each, not per posting (ADR 0010).
    with inserts_checked_in_bulk(Posting), connection.cursor() as cursor:
        # Dropped at commit; dropped here too for a dry run's single transaction.
        cursor.execute("DROP TABLE IF EXISTS _ledger_facts, _ledger_posted")
        seller_accounts_prepare()
        cursor.execute(_FACTS_PAGE_SQL.replace("__SCOPE__", _payments_scope(scope_after)), params)
        cursor.execute(_AMOUNT_TERMS_SQL)
        anomalies = [
            anomaly
            for row in cursor.fetchall()
            if (anomaly := _amount_anomaly(row[0], tuple(row[1:5]), row[5:])) is not None
        ]
        cursor.execute(_REFUSED_ENTRY_SQL, params)
        refused = cursor.fetchone()
        if refused is not None:
            legacy_id, step = refused
            raise LedgerError(
                f"Entry legacy:stripe_payments:{legacy_id}:{step} does not balance or has no line"
            )
        cursor.execute(_ACCOUNTS_PAGE_SQL, {**params, "now": now})
        cursor.execute(
            "CREATE TEMPORARY TABLE _ledger_posted (entry_id bigint NOT NULL,"
            " legacy_id bigint NOT NULL, kind text NOT NULL) ON COMMIT DROP"
        )
        # The payment's id read back off the reference ('legacy:stripe_payments:<id>:<step>')
        # and the step off the kind: RETURNING gives only the entry's own columns.
        cursor.execute(
            "WITH posted AS (INSERT INTO ledger_journalentry (reference, kind, description,"
            " occurred_at, created_at) SELECT reference, kind, '', occurred_at, %(now)s"
            f" FROM ({_ENTRIES_PAGE_SQL}) e ORDER BY legacy_id, position"
            # A first import into an empty ledger inserts without ON CONFLICT (no reference can
            # clash; one that did would fail the page): ADR 0014.
            + (
                ""
                if table_filled_by_run(run=run, model=JournalEntry)
                else " ON CONFLICT (reference) DO NOTHING"
            )
            + " RETURNING id, reference, kind)"
            " INSERT INTO _ledger_posted (entry_id, legacy_id, kind)"
            " SELECT id, split_part(reference, ':', 3)::bigint, kind FROM posted",
            {**params, "now": now},
        )
        posted = cursor.rowcount
        if posted:
            # The entries join their facts and accounts by hash (the page's temporary tables
            # have no statistics; analyzing them cost 0.27 s a page).
            with hash_joins_only(cursor):
                cursor.execute(_POSTINGS_PAGE_SQL)
    anomalies_record(anomalies=anomalies, run=run)
    return LedgerPageResult(last, read, posted)


# ---- the id map ----------------------------------------------------------------------------

# kind, Gavel table and its column, Gavel model, staging table and the column that joins them.
# Entities still held in staging (orders, payments) are found by their legacy id
# there; they get map entries when their Gavel app loads them.
ID_MAP_SOURCES: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("person", "users_user", "legacy_person_id", "users.user", "legacy_legacyperson", "legacy_id"),
    (
        "connected_account",
        "connect_connectedaccount",
        "stripe_account_id",
        "connect.connectedaccount",
        "legacy_legacystripeaccount",
        "stripe_seller_id",
    ),
    (
        "listing",
        "legacy_importedlisting",
        "legacy_id",
        "legacy.importedlisting",
        "legacy_legacylisting",
        "legacy_id",
    ),
)


def id_map_refresh(*, scope_after: int) -> int:
    """Legacy id -> Gavel row for everything loaded since ``scope_after``."""
    added = 0
    with connection.cursor() as cursor:
        for kind, target, target_key, model, staging, staging_key in ID_MAP_SOURCES:
            select = (
                f"SELECT %s, s.legacy_id::text, %s, t.id, now() FROM {staging} s"
                f" JOIN {target} t ON t.{target_key} = s.{staging_key}"
                " WHERE s.staged_run_id > %s"
            )
            cursor.execute(
                "INSERT INTO legacy_legacyidmap (kind, legacy_id, gavel_model, gavel_id,"
                f" created_at) {select} ON CONFLICT (kind, legacy_id) DO NOTHING",
                [kind, model, scope_after],
            )
            added += cursor.rowcount
    return added
