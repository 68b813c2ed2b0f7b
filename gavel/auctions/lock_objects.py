"""Row locks of the auctions app, in one place. Several rows lock in primary-key order."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime
from django.utils.timezone import is_aware, make_aware

from gavel.auctions.models import Auction, PaymentMethodSetup, Sale, SecondChanceOffer


def auction_lock(*, auction_id: int) -> QuerySet[Auction]:
    """The auction row, locked: every bid, edit and close on one auction goes through it."""
    return Auction.objects.select_for_update().filter(pk=auction_id)


def auctions_due_lock(*, now: datetime, limit: int) -> QuerySet[Auction]:
    """Active auctions past their end, locked without waiting on ones being bid on right now."""
    return (
        Auction.objects.select_for_update(skip_locked=True)
        .filter(status=Auction.Status.ACTIVE, ends_at__lte=now)
        .order_by("pk")[:limit]
    )


def sale_lock(*, sale_id: int) -> QuerySet[Sale]:
    return Sale.objects.select_for_update().filter(pk=sale_id)


def offer_lock(*, offer_id: int) -> QuerySet[SecondChanceOffer]:
    return SecondChanceOffer.objects.select_for_update().filter(pk=offer_id)


def setup_lock(*, setup_id: int) -> QuerySet[PaymentMethodSetup]:
    return PaymentMethodSetup.objects.select_for_update().filter(pk=setup_id)


@dataclass(frozen=True, slots=True)
class LockedAuction:
    """The columns the bid path needs, read under the row lock, plus whether the bidder has a
    verified payment method (one round trip instead of two on the hottest path)."""

    id: int
    seller_id: int
    currency: str
    starts_at: datetime
    ends_at: datetime
    status: str
    outcome: str
    starting_price_minor: int
    reserve_price_minor: int | None
    buy_now_price_minor: int | None
    increment_table: Any
    soft_close_seconds: int
    soft_close_style: str
    hold_policy: str
    hold_threshold_minor: int | None
    price_minor: int
    leader_id: int | None
    leader_max_minor: int
    bid_count: int
    version: int
    bidder_eligible: bool


_LOCK_FOR_BID_SELECT = """
SELECT a.id, a.seller_id, a.currency, a.starts_at, a.ends_at, a.status, a.outcome,
       a.starting_price_minor, a.reserve_price_minor, a.buy_now_price_minor,
       a.increment_table, a.soft_close_seconds, a.soft_close_style, a.hold_policy,
       a.hold_threshold_minor, a.price_minor, a.leader_id, a.leader_max_minor, a.bid_count,
       a.version,
       EXISTS (
           SELECT 1 FROM auctions_verifiedpaymentmethod v
           WHERE v.user_id = %s AND v.detached_at IS NULL
             AND (v.exp_year IS NULL OR v.exp_year > %s OR (v.exp_year = %s AND v.exp_month >= %s))
       )
FROM auctions_auction a
WHERE a.id = %s
"""


def _lock_for_bid_sql() -> str:
    if connection.features.has_select_for_update_of:
        return _LOCK_FOR_BID_SELECT + "FOR UPDATE OF a"
    # SQLite (the demo) has no row locks: its database-wide write lock serializes writers.
    return _LOCK_FOR_BID_SELECT


def auction_lock_for_bid(*, auction_id: int, bidder_id: int, today: date) -> LockedAuction | None:
    """Lock one auction for a bid (inside the caller's transaction); None if it is missing.
    ``bidder_eligible`` follows ``selectors.usable_payment_methods``."""
    with connection.cursor() as cursor:
        cursor.execute(
            _lock_for_bid_sql(), [bidder_id, today.year, today.year, today.month, auction_id]
        )
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    # Raw rows skip the fields' converters: JSON may arrive as text, SQLite's datetimes too.
    if isinstance(values[10], str):
        values[10] = json.loads(values[10])
    for index in (3, 4):
        values[index] = _aware(values[index])
    values[20] = bool(values[20])
    return LockedAuction(*values)


def _aware(value: datetime | str) -> datetime:
    parsed = parse_datetime(value) if isinstance(value, str) else value
    assert parsed is not None
    return parsed if is_aware(parsed) else make_aware(parsed, UTC)
