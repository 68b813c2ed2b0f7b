"""Placing bids and buying now, under the auction's row lock."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from gavel.auctions import metrics
from gavel.auctions.engine import ProxyState, proxy_bid_apply
from gavel.auctions.live import auction_event_publish_on_commit
from gavel.auctions.lock_objects import LockedAuction, auction_lock, auction_lock_for_bid
from gavel.auctions.models import Auction, AuctionExtension, Bid, Sale
from gavel.auctions.policies import bidder_hold_required, bidder_hold_satisfied
from gavel.auctions.selectors import (
    AuctionPublicState,
    auction_buy_now_available,
    auction_proxy_state,
    auction_public_state,
    auction_rules,
    bidder_has_verified_payment_method,
)
from gavel.auctions.services.sales import sale_create
from gavel.auctions.states import status_transition
from gavel.common.errors import ConflictError, NotFoundError, ServiceError
from gavel.common.money import MoneyError, currency_normalize
from gavel.users.models import User

_REFUSAL_MESSAGES = {
    "bid_below_minimum": "Your maximum must be at least {minimum} minor units.",
    "bid_not_above_own_maximum": "You lead already; a new maximum must exceed your current one.",
}


@dataclass(frozen=True, slots=True)
class BidPlaceResult:
    bid: Bid
    is_leading: bool
    extended: bool
    state: AuctionPublicState


def soft_close_end(auction: Auction | LockedAuction, *, now: datetime) -> datetime | None:
    """The new end when a bid at ``now`` falls within the soft-close window, else None."""
    window = auction.soft_close_seconds
    if window <= 0 or auction.ends_at - now > timedelta(seconds=window):
        return None
    if auction.soft_close_style == Auction.SoftCloseStyle.EXTEND_BY:
        return auction.ends_at + timedelta(seconds=window)
    return max(auction.ends_at, now + timedelta(seconds=window))


def _refuse(message: str, code: str, status_code: int = 400, **fields: str) -> ServiceError:
    return ServiceError(
        message,
        code=code,
        status_code=status_code,
        fields={name: [text] for name, text in fields.items()},
    )


def _require_currency(auction_currency: str, currency: str) -> None:
    try:
        normalized = currency_normalize(currency)
    except MoneyError as error:
        raise _refuse(str(error), "currency_mismatch", currency=str(error)) from error
    if normalized != auction_currency:
        message = f"This auction is in {auction_currency}."
        raise _refuse(message, "currency_mismatch", currency=message)


def _require_open(auction: Auction | LockedAuction, *, now: datetime) -> None:
    if auction.status != Auction.Status.ACTIVE or now >= auction.ends_at:
        raise ConflictError("This auction has ended.", code="auction_closed")
    if now < auction.starts_at:
        raise ConflictError("This auction has not started yet.", code="auction_not_started")


def _require_eligible(user: User) -> None:
    if not bidder_has_verified_payment_method(user=user):
        raise _refuse(
            "Add a verified payment method before bidding.", "payment_method_required", 403
        )


def _auction_locked(auction_id: int) -> Auction:
    auction = auction_lock(auction_id=auction_id).first()
    if auction is None:
        raise NotFoundError("No such auction.", code="auction_not_found")
    return auction


def bid_place(
    *,
    auction_id: int,
    bidder: User,
    max_amount_minor: int,
    currency: str,
    now: datetime | None = None,
) -> BidPlaceResult:
    """Place a maximum bid. Refusals are 4xx ServiceErrors and write nothing.

    The hottest path in Gavel: one locked read (auction plus the bidder's eligibility), the
    proxy engine, one statement that inserts the bid and updates the auction, commit.
    """
    if isinstance(max_amount_minor, bool) or not isinstance(max_amount_minor, int):
        raise _refuse("An integer number of minor units is required.", "invalid_amount")
    if max_amount_minor <= 0:
        raise _refuse("The amount must be positive.", "invalid_amount", max_amount_minor="> 0")
    try:
        with transaction.atomic():
            written = _bid_place_locked(
                auction_id=auction_id,
                bidder=bidder,
                max_amount_minor=max_amount_minor,
                currency=currency,
                now=now,
            )
    except ServiceError as error:
        metrics.BIDS.labels(result=error.code).inc()
        raise
    # Committed and unlocked: what follows keeps the row lock no longer than it must be held.
    metrics.BIDS.labels(result="accepted").inc()
    return _bid_placed(written, bidder=bidder, max_amount_minor=max_amount_minor)


@dataclass(frozen=True, slots=True)
class _BidWritten:
    after: LockedAuction
    bid_id: int
    extended: bool
    placed_at: datetime


def _bid_placed(written: _BidWritten, *, bidder: User, max_amount_minor: int) -> BidPlaceResult:
    after = written.after
    assert after.leader_id is not None
    bid = Bid(
        id=written.bid_id,
        auction_id=after.id,
        bidder=bidder,
        kind=Bid.Kind.BID,
        sequence=after.bid_count,
        max_amount_minor=max_amount_minor,
        currency=after.currency,
        price_after_minor=after.price_minor,
        leader_after_id=after.leader_id,
        ends_at_after=after.ends_at,
        created_at=written.placed_at,
    )
    public = auction_public_state(after)
    # Immediate unless a caller's outer transaction is still open: then after its commit.
    auction_event_publish_on_commit(
        auction_id=after.id, event_type="bid", data=public.as_event(after.id)
    )
    return BidPlaceResult(
        bid=bid,
        is_leading=after.leader_id == bidder.pk,
        extended=written.extended,
        state=public,
    )


_BID_WRITE_SQL = """
WITH new_bid AS (
    INSERT INTO auctions_bid (auction_id, bidder_id, kind, sequence, max_amount_minor,
                              currency, price_after_minor, leader_after_id, ends_at_after,
                              created_at)
    VALUES (%s, %s, 'bid', %s, %s, %s, %s, %s, %s, %s)
    RETURNING id
)
UPDATE auctions_auction
SET price_minor = %s, leader_id = %s, leader_max_minor = %s, bid_count = bid_count + 1,
    version = version + 1, ends_at = %s, extension_count = extension_count + %s,
    updated_at = %s
WHERE id = %s
RETURNING (SELECT id FROM new_bid)
"""


def _bid_place_locked(
    *, auction_id: int, bidder: User, max_amount_minor: int, currency: str, now: datetime | None
) -> _BidWritten:
    locked = auction_lock_for_bid(
        auction_id=auction_id, bidder_id=bidder.pk, today=(now or timezone.now()).date()
    )
    if locked is None:
        raise NotFoundError("No such auction.", code="auction_not_found")
    # The clock is read after the lock is held, so a close that locked first wins the race.
    now = now or timezone.now()
    if locked.seller_id == bidder.pk:
        raise _refuse("You cannot bid on your own auction.", "own_auction", 403)
    if not locked.bidder_eligible:
        raise _refuse(
            "Add a verified payment method before bidding.", "payment_method_required", 403
        )
    _require_currency(locked.currency, currency)
    _require_open(locked, now=now)
    if locked.hold_policy != Auction.HoldPolicy.NONE:
        _require_hold(locked, bidder=bidder, amount_minor=max_amount_minor)
    decision = proxy_bid_apply(
        auction_rules(locked),
        auction_proxy_state(locked),
        bidder_id=bidder.pk,
        max_minor=max_amount_minor,
    )
    if not decision.accepted:
        message = _REFUSAL_MESSAGES[decision.refusal_code].format(
            minimum=decision.minimum_bid_minor
        )
        raise _refuse(message, decision.refusal_code, max_amount_minor=message)
    state = decision.state
    assert state.leader_id is not None
    new_end = soft_close_end(locked, now=now)
    ends_at = new_end or locked.ends_at
    bid_id = _bid_write(
        locked=locked,
        bidder_id=bidder.pk,
        max_amount_minor=max_amount_minor,
        state=state,
        ends_at=ends_at,
        extended=new_end is not None,
        now=now,
    )
    if new_end is not None:
        AuctionExtension.objects.create(
            auction_id=locked.id,
            bid_id=bid_id,
            previous_ends_at=locked.ends_at,
            new_ends_at=new_end,
        )
    after = replace(
        locked,
        price_minor=state.price_minor,
        leader_id=state.leader_id,
        leader_max_minor=state.leader_max_minor,
        bid_count=state.bid_count,
        version=locked.version + 1,
        ends_at=ends_at,
    )
    return _BidWritten(after=after, bid_id=bid_id, extended=new_end is not None, placed_at=now)


def single_statement_write_supported() -> bool:
    """PostgreSQL inserts the bid and updates the auction in one statement (a data-modifying
    CTE); other databases (the SQLite demo) take two."""
    return connection.vendor == "postgresql"


def _bid_write(
    *,
    locked: LockedAuction,
    bidder_id: int,
    max_amount_minor: int,
    state: ProxyState,
    ends_at: datetime,
    extended: bool,
    now: datetime,
) -> int:
    """Insert the bid and update the auction's proxy state; returns the bid's id."""
    assert state.leader_id is not None
    if not single_statement_write_supported():
        bid = Bid.objects.create(
            auction_id=locked.id,
            bidder_id=bidder_id,
            kind=Bid.Kind.BID,
            sequence=state.bid_count,
            max_amount_minor=max_amount_minor,
            currency=locked.currency,
            price_after_minor=state.price_minor,
            leader_after_id=state.leader_id,
            ends_at_after=ends_at,
        )
        Auction.objects.filter(pk=locked.id).update(
            price_minor=state.price_minor,
            leader_id=state.leader_id,
            leader_max_minor=state.leader_max_minor,
            bid_count=F("bid_count") + 1,
            version=F("version") + 1,
            ends_at=ends_at,
            extension_count=F("extension_count") + int(extended),
            updated_at=now,
        )
        return bid.pk
    with connection.cursor() as cursor:
        cursor.execute(
            _BID_WRITE_SQL,
            [
                locked.id,
                bidder_id,
                state.bid_count,
                max_amount_minor,
                locked.currency,
                state.price_minor,
                state.leader_id,
                ends_at,
                now,
                state.price_minor,
                state.leader_id,
                state.leader_max_minor,
                ends_at,
                int(extended),
                now,
                locked.id,
            ],
        )
        row = cursor.fetchone()
    assert row is not None
    bid_id: int = row[0]
    return bid_id


def _require_hold(locked: LockedAuction, *, bidder: User, amount_minor: int) -> None:
    auction = Auction(
        id=locked.id,
        seller_id=locked.seller_id,
        currency=locked.currency,
        hold_policy=locked.hold_policy,
        hold_threshold_minor=locked.hold_threshold_minor,
    )
    if bidder_hold_required(
        auction=auction, amount_minor=amount_minor
    ) and not bidder_hold_satisfied(auction=auction, user=bidder, amount_minor=amount_minor):
        raise _refuse(
            f"A maximum above {locked.hold_threshold_minor} needs a {locked.hold_policy} first.",
            "hold_required",
            403,
        )


def auction_buy_now(*, auction_id: int, buyer: User, now: datetime | None = None) -> Sale:
    """End the auction at once at the buy-now price, while buy-now is still available."""
    _require_eligible(buyer)
    with transaction.atomic():
        auction = _auction_locked(auction_id)
        now = now or timezone.now()
        if auction.seller_id == buyer.pk:
            raise _refuse("You cannot buy your own item.", "own_auction", 403)
        _require_open(auction, now=now)
        price = auction.buy_now_price_minor
        if price is None or not auction_buy_now_available(auction):
            raise ConflictError("Buy-now is no longer available.", code="buy_now_unavailable")
        Bid.objects.create(
            auction=auction,
            bidder=buyer,
            kind=Bid.Kind.BUY_NOW,
            sequence=auction.bid_count + 1,
            max_amount_minor=price,
            currency=auction.currency,
            price_after_minor=price,
            leader_after=buyer,
            ends_at_after=auction.ends_at,
        )
        auction.price_minor = price
        auction.leader = buyer
        auction.leader_max_minor = price
        auction.bid_count += 1
        auction.version += 1
        auction.outcome = Auction.Outcome.BOUGHT_NOW
        auction.winner = buyer
        auction.hammer_price_minor = price
        auction.closed_at = now
        status_transition(
            instance=auction,
            to_status=Auction.Status.SOLD,
            reason="bought now",
            fields=[
                "price_minor",
                "leader",
                "leader_max_minor",
                "bid_count",
                "version",
                "outcome",
                "winner",
                "hammer_price_minor",
                "closed_at",
            ],
        )
        sale = sale_create(auction=auction, buyer=buyer, amount_minor=price, kind=Sale.Kind.BUY_NOW)
        auction_event_publish_on_commit(
            auction_id=auction.pk,
            event_type="closed",
            data=auction_public_state(auction).as_event(auction.pk),
        )
    metrics.CLOSES.labels(outcome=Auction.Outcome.BOUGHT_NOW).inc()
    return sale
