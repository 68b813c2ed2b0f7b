"""Stage two for listings: staged legacy listings -> Gavel's catalogue of imported listings.

Each listing whose author is a Gavel user and whose price and currency are usable becomes one
``ImportedListing`` (seller, title, description, price, shipping, currency, status), upserted
on its unique ``legacy_id``: a repeated or resumed load changes nothing, a delta updates what
the portal changed. Listings are history, never biddable: one still open on the portal is
marked ``open_at_cutover`` for its seller to relist. Rows that cannot be loaded are quarantined
(``LegacyAnomaly``, table ``listings``); nothing is skipped silently. After the orders load,
``listings_order_lines_link`` points each imported order line at the listing it bought.

Everything is set-based SQL over staging, a keyset page of listings per transaction with its
checkpoint (the importer's ``load:listings`` step), as the other load steps.
"""

# SQL here is built from identifiers in this code (tables, columns), never from input; every
# value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connection

from gavel.common.money import SUPPORTED_CURRENCIES
from gavel.common.references import inserts_checked_in_bulk
from gavel.legacy.checks import anomalies_resolve, anomaly_ids_sql, orders_scope
from gavel.legacy.models import ImportedListingOrderLine, ImportRun
from gavel.legacy.states import BLOCKING_ANOMALIES, AnomalyKind

_CURRENCY = "upper(trim(l.currency))"
# The listings a run loads: those it staged, and those an earlier load held back for want of
# an author or of a user (tried again: the author may be in the portal, or have one, now).
_RETRIED = (AnomalyKind.SELLER_WITHOUT_USER, AnomalyKind.PERSON_MISSING)
_RETRIED_IDS = anomaly_ids_sql(_RETRIED, "listings")
_IN_SCOPE = f"(l.staged_run_id > %(after)s OR l.legacy_id IN ({_RETRIED_IDS}))"
_IN_PAGE = f"{_IN_SCOPE} AND l.legacy_id > %(first)s AND l.legacy_id <= %(last)s"

# (kind, condition on a staged listing l, its author's person row p and Gavel user u, details).
_CHECKS: tuple[tuple[AnomalyKind, str, str], ...] = (
    (
        AnomalyKind.PERSON_MISSING,
        "p.legacy_id IS NULL",
        "jsonb_build_object('author', l.author_legacy_id)",
    ),
    (
        AnomalyKind.SELLER_WITHOUT_USER,
        "p.legacy_id IS NOT NULL AND u.id IS NULL",
        "jsonb_build_object('author', l.author_legacy_id)",
    ),
    (
        AnomalyKind.PERSON_DELETED,
        "p.is_deleted",
        "jsonb_build_object('author', l.author_legacy_id)",
    ),
    (
        AnomalyKind.NULL_MONEY,
        "l.price_cents IS NULL",
        "jsonb_build_object('columns', jsonb_build_array('price_cents'))",
    ),
    (
        AnomalyKind.NEGATIVE_MONEY,
        "l.price_cents < 0 OR l.shipping_price_cents < 0",
        "jsonb_build_object('price_cents', l.price_cents,"
        " 'shipping_price_cents', l.shipping_price_cents)",
    ),
    (
        AnomalyKind.UNKNOWN_CURRENCY,
        f"l.currency IS NULL OR NOT ({_CURRENCY} = ANY(%(currencies)s))",
        "jsonb_build_object('column', 'currency', 'value', l.currency)",
    ),
    (
        AnomalyKind.CURRENCY_CASE,
        f"l.currency <> {_CURRENCY} AND {_CURRENCY} = ANY(%(currencies)s)",
        "jsonb_build_object('column', 'currency', 'value', l.currency)",
    ),
)
# A listing is loaded exactly when none of the blocking checks above holds.
_LOADABLE = (
    "u.id IS NOT NULL AND l.price_cents >= 0 AND COALESCE(l.shipping_price_cents, 0) >= 0"
    f" AND {_CURRENCY} = ANY(%(currencies)s)"
)
_SOURCE = (
    "FROM legacy_legacylisting l"
    " LEFT JOIN legacy_legacyperson p ON p.legacy_id = l.author_legacy_id"
    " LEFT JOIN users_user u ON u.legacy_person_id = l.author_legacy_id"
)
_COLUMNS = (
    "seller_id",
    "title",
    "description",
    "price_minor",
    "shipping_minor",
    "currency",
    "status",
    "listed_at",
    "legacy_updated_at",
)


@dataclass(frozen=True, slots=True)
class ListingsPage:
    """A keyset page of staged listings: legacy ids in (first, last]."""

    first: int
    last: int
    read: int


def listings_page_next(*, scope_after: int, after_key: int, limit: int) -> ListingsPage | None:
    """The next page of listings to load after ``scope_after`` (``_IN_SCOPE``), or None when
    done."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), max(legacy_id) FROM (SELECT l.legacy_id FROM legacy_legacylisting l"
            f" WHERE {_IN_SCOPE} AND l.legacy_id > %(first)s ORDER BY l.legacy_id"
            " LIMIT %(limit)s) page",
            {"after": scope_after, "first": after_key, "limit": limit},
        )
        read, last = cursor.fetchone()
    if not read:
        return None
    return ListingsPage(first=after_key, last=int(last), read=int(read))


def listings_page_load(*, page: ListingsPage, run: ImportRun, scope_after: int) -> int:
    """Quarantine the page's bad listings, upsert the good ones; returns rows written."""
    params: dict[str, Any] = {
        "after": scope_after,
        "first": page.first,
        "last": page.last,
        "run": run.pk,
        "currencies": sorted(SUPPORTED_CURRENCIES),
        "blocking": sorted(str(kind) for kind in BLOCKING_ANOMALIES),
    }
    checks = " UNION ALL ".join(
        f"SELECT '{kind}' AS kind, l.legacy_id, {details} AS details {_SOURCE}"
        f" WHERE {_IN_PAGE} AND ({condition})"
        for kind, condition, details in _CHECKS
    )
    status = (
        "CASE WHEN l.is_deleted THEN 'deleted' WHEN l.is_open THEN 'open_at_cutover'"
        " ELSE 'closed' END"
    )
    updated = ", ".join(f"{column} = EXCLUDED.{column}" for column in _COLUMNS)
    old = ", ".join(f"legacy_importedlisting.{column}" for column in _COLUMNS)
    new = ", ".join(f"EXCLUDED.{column}" for column in _COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO legacy_legacyanomaly (kind, legacy_table, legacy_id, is_blocking,"
            " details, run_id, detected_at)"
            " SELECT c.kind, 'listings', c.legacy_id::text, c.kind = ANY(%(blocking)s),"
            f" c.details, %(run)s, now() FROM ({checks}) c"
            " ON CONFLICT (kind, legacy_table, legacy_id) DO NOTHING",
            params,
        )
        cursor.execute(
            f"INSERT INTO legacy_importedlisting (legacy_id, {', '.join(_COLUMNS)},"
            " imported_run_id)"
            " SELECT l.legacy_id, u.id, COALESCE(l.title, ''), COALESCE(l.description, ''),"
            f" l.price_cents, COALESCE(l.shipping_price_cents, 0), {_CURRENCY}, {status},"
            f" l.legacy_created_at, l.legacy_updated_at, %(run)s {_SOURCE}"
            f" WHERE {_IN_PAGE} AND {_LOADABLE}"
            f" ON CONFLICT (legacy_id) DO UPDATE SET {updated},"
            " imported_run_id = EXCLUDED.imported_run_id"
            f" WHERE ({old}) IS DISTINCT FROM ({new})",
            params,
        )
        written = int(cursor.rowcount)
    # A listing held back for want of an author or of a user, loaded now: resolved.
    anomalies_resolve(
        run_id=run.pk,
        table="listings",
        kinds=_RETRIED,
        # Only the loaded listings such an anomaly names: the page's range of a delta spans
        # the table, and its few rows in scope are those (joined to every loaded listing by
        # the text of its id, 250 anomalies took 30 s on 250,000 listings).
        rows="SELECT il.legacy_id FROM legacy_importedlisting il"
        " WHERE il.legacy_id > %(first)s AND il.legacy_id <= %(last)s"
        f" AND il.legacy_id IN ({_RETRIED_IDS})",
        params={"first": page.first, "last": page.last},
    )
    return written


def listings_order_lines_link(
    *, run: ImportRun, scope_after: int, part: int = 0, parts: int = 1
) -> int:
    """Point imported order lines at the listing their legacy transaction bought: lines of
    orders loaded since ``scope_after``, and lines of any order whose listing this run loaded
    (a listing released from quarantine by a delta). Only transactions whose id is ``part``
    modulo ``parts``: the parts are disjoint, so several connections can link them side by
    side. Returns the links added."""
    select = (
        "SELECT ol.id, il.id FROM legacy_legacyorder o"
        " JOIN payments_order po ON po.legacy_reference = 'legacy:transactions:' || o.legacy_id"
        " JOIN payments_orderline ol ON ol.order_id = po.id"
        " JOIN legacy_importedlisting il ON il.legacy_id = o.listing_legacy_id"
        " WHERE o.legacy_id %% %(parts)s = %(part)s AND"
    )
    # The orders this run loaded (the orders load's own scope), then the others whose
    # listing this run loaded.
    scope = orders_scope(scope_after)
    # Foreign keys checked in one statement each, not per link (ADR 0010).
    with inserts_checked_in_bulk(ImportedListingOrderLine), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO legacy_importedlistingorderline (order_line_id, listing_id)"
            f" {select} {scope}"
            f" UNION ALL {select} il.imported_run_id = %(run)s"
            # disjoint halves: nothing to de-duplicate (IS NOT TRUE: a NULL key is not in)
            f" AND ({scope}) IS NOT TRUE"
            " ON CONFLICT (order_line_id) DO NOTHING",
            {"scope": scope_after, "run": run.pk, "part": part, "parts": parts},
        )
        return int(cursor.rowcount)
