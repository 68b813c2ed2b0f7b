"""Reads of the auctions app."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from django.conf import settings
from django.db.models import Min, Q, QuerySet
from django.utils import timezone

from gavel.auctions.engine import (
    AuctionRules,
    ProxyState,
    increment_table_validate,
    minimum_bid,
    reserve_met,
)
from gavel.auctions.models import (
    Auction,
    Bid,
    PaymentMethodSetup,
    Sale,
    SecondChanceOffer,
    VerifiedPaymentMethod,
)
from gavel.common.errors import NotFoundError
from gavel.users.models import User


class AuctionTerms(Protocol):
    """What the pricing reads need: an ``Auction`` or the bid path's ``LockedAuction``."""

    @property
    def starting_price_minor(self) -> int: ...
    @property
    def reserve_price_minor(self) -> int | None: ...
    @property
    def buy_now_price_minor(self) -> int | None: ...
    @property
    def increment_table(self) -> Any: ...
    @property
    def price_minor(self) -> int: ...
    @property
    def leader_id(self) -> int | None: ...
    @property
    def leader_max_minor(self) -> int: ...
    @property
    def bid_count(self) -> int: ...
    @property
    def currency(self) -> str: ...
    @property
    def ends_at(self) -> datetime: ...
    @property
    def status(self) -> str: ...
    @property
    def outcome(self) -> str: ...
    @property
    def version(self) -> int: ...


def auction_rules(auction: AuctionTerms) -> AuctionRules:
    return AuctionRules(
        starting_price_minor=auction.starting_price_minor,
        reserve_price_minor=auction.reserve_price_minor,
        increment_table=increment_table_validate(auction.increment_table),
    )


def auction_proxy_state(auction: AuctionTerms) -> ProxyState:
    return ProxyState(
        price_minor=auction.price_minor,
        leader_id=auction.leader_id,
        leader_max_minor=auction.leader_max_minor,
        bid_count=auction.bid_count,
    )


def auction_is_open(auction: Auction, *, now: datetime) -> bool:
    return auction.status == Auction.Status.ACTIVE and auction.starts_at <= now < auction.ends_at


def auction_reserve_met(auction: AuctionTerms) -> bool:
    return reserve_met(auction_rules(auction), auction_proxy_state(auction))


def auction_minimum_bid(auction: AuctionTerms) -> int:
    return minimum_bid(auction_rules(auction), auction_proxy_state(auction))


def auction_buy_now_available(auction: AuctionTerms) -> bool:
    """Buy-now is offered until the first bid (no reserve) or until a bid meets the reserve,
    and never once the price has reached the buy-now price."""
    if auction.buy_now_price_minor is None or auction.status != Auction.Status.ACTIVE:
        return False
    if auction.price_minor >= auction.buy_now_price_minor and auction.bid_count > 0:
        return False
    if auction.reserve_price_minor is None:
        return auction.bid_count == 0
    return not auction_reserve_met(auction)


@dataclass(frozen=True, slots=True)
class AuctionPublicState:
    price_minor: int
    currency: str
    bid_count: int
    reserve_met: bool
    has_reserve: bool
    minimum_bid_minor: int
    buy_now_available: bool
    ends_at: datetime
    status: str
    outcome: str
    version: int

    def as_event(self, auction_id: int) -> dict[str, Any]:
        return {
            "auction_id": auction_id,
            "price_minor": self.price_minor,
            "currency": self.currency,
            "bid_count": self.bid_count,
            "reserve_met": self.reserve_met,
            "minimum_bid_minor": self.minimum_bid_minor,
            "buy_now_available": self.buy_now_available,
            "ends_at": self.ends_at.isoformat(),
            "status": self.status,
            "outcome": self.outcome,
            "version": self.version,
        }


def auction_public_state(auction: AuctionTerms) -> AuctionPublicState:
    return AuctionPublicState(
        price_minor=auction.price_minor,
        currency=auction.currency,
        bid_count=auction.bid_count,
        reserve_met=auction_reserve_met(auction),
        has_reserve=auction.reserve_price_minor is not None,
        minimum_bid_minor=auction_minimum_bid(auction),
        buy_now_available=auction_buy_now_available(auction),
        ends_at=auction.ends_at,
        status=auction.status,
        outcome=auction.outcome,
        version=auction.version,
    )


def auction_get(*, auction_id: int) -> Auction:
    auction = Auction.objects.select_related("seller").filter(pk=auction_id).first()
    if auction is None:
        raise NotFoundError("No such auction.", code="auction_not_found")
    return auction


def auction_stream_snapshot(*, auction_id: int) -> dict[str, Any]:
    """The live stream's first event: the auction's public state, read now."""
    return auction_public_state(auction_get(auction_id=auction_id)).as_event(auction_id)


def auction_list(
    *,
    status: str | None = None,
    category: str | None = None,
    currency: str | None = None,
    seller_id: int | None = None,
    search: str | None = None,
    price_min_minor: int | None = None,
    price_max_minor: int | None = None,
    open_only: bool = False,
) -> QuerySet[Auction]:
    queryset = Auction.objects.select_related("seller").order_by("-id")
    if status:
        queryset = queryset.filter(status=status)
    if category:
        queryset = queryset.filter(category=category)
    if currency:
        queryset = queryset.filter(currency=currency.upper())
    if seller_id is not None:
        queryset = queryset.filter(seller_id=seller_id)
    if search:
        queryset = queryset.filter(Q(title__icontains=search) | Q(description__icontains=search))
    if price_min_minor is not None:
        queryset = queryset.filter(price_minor__gte=price_min_minor)
    if price_max_minor is not None:
        queryset = queryset.filter(price_minor__lte=price_max_minor)
    if open_only:
        now = timezone.now()
        queryset = queryset.filter(
            status=Auction.Status.ACTIVE, starts_at__lte=now, ends_at__gt=now
        )
    return queryset


def bid_history(
    *, auction: Auction, limit: int, before_sequence: int | None = None
) -> list[tuple[Bid, int]]:
    """A page of bids, newest first, each with its bidder's alias number in this auction
    (1 = the first person to bid), so identities stay masked but a bidder's bids can be told
    apart across pages."""
    bids = auction.bids.order_by("-sequence")
    if before_sequence is not None:
        bids = bids.filter(sequence__lt=before_sequence)
    page = list(bids[:limit])
    first_bids = auction.bids.values("bidder_id").annotate(first=Min("sequence")).order_by("first")
    aliases = {row["bidder_id"]: number for number, row in enumerate(first_bids, start=1)}
    return [(bid, aliases[bid.bidder_id]) for bid in page]


def bids_of_user(*, user: User) -> QuerySet[Bid]:
    return Bid.objects.filter(bidder=user).select_related("auction").order_by("-id")


def usable_payment_methods(*, now: datetime | None = None) -> QuerySet[VerifiedPaymentMethod]:
    """Verified methods still attached and not past their expiry month."""
    today = (now or timezone.now()).date()
    return VerifiedPaymentMethod.objects.filter(detached_at__isnull=True).filter(
        Q(exp_year__isnull=True)
        | Q(exp_year__gt=today.year)
        | Q(exp_year=today.year, exp_month__gte=today.month)
    )


def bidder_has_verified_payment_method(*, user: User, now: datetime | None = None) -> bool:
    return usable_payment_methods(now=now).filter(user=user).exists()


def verified_payment_methods(*, user: User) -> QuerySet[VerifiedPaymentMethod]:
    return usable_payment_methods().filter(user=user).order_by("-id")


def payment_method_setup_get(*, setup_id: int) -> PaymentMethodSetup:
    setup = PaymentMethodSetup.objects.select_related("customer").filter(pk=setup_id).first()
    if setup is None:
        raise NotFoundError("No such payment method setup.", code="setup_not_found")
    return setup


def sales_visible_to(*, user: User) -> QuerySet[Sale]:
    queryset = Sale.objects.select_related("auction").order_by("-id")
    if user.is_staff:
        return queryset
    return queryset.filter(Q(buyer=user) | Q(seller=user))


def sale_get(*, sale_id: int) -> Sale:
    sale = Sale.objects.filter(pk=sale_id).first()
    if sale is None:
        raise NotFoundError("No such sale.", code="sale_not_found")
    return sale


def offers_visible_to(*, user: User) -> QuerySet[SecondChanceOffer]:
    queryset = SecondChanceOffer.objects.select_related("auction").order_by("-id")
    if user.is_staff:
        return queryset
    return queryset.filter(Q(bidder=user) | Q(auction__seller=user))


def second_chance_candidates(*, auction: Auction, excluded_user_ids: set[int]) -> list[Bid]:
    """Each other bidder's highest bid, best first (higher maximum, then earlier), whose
    maximum meets the reserve. Eligibility is checked by the caller."""
    best: dict[int, Bid] = {}
    for bid in auction.bids.filter(kind=Bid.Kind.BID).order_by("sequence"):
        current = best.get(bid.bidder_id)
        if current is None or bid.max_amount_minor > current.max_amount_minor:
            best[bid.bidder_id] = bid
    reserve = auction.reserve_price_minor or 0
    candidates = [
        bid
        for bidder_id, bid in best.items()
        if bidder_id not in excluded_user_ids and bid.max_amount_minor >= reserve
    ]
    candidates.sort(key=lambda bid: (-bid.max_amount_minor, bid.sequence))
    return candidates


def close_eta_horizon_seconds() -> int:
    """How far ahead an exact-time close task may be scheduled (below the broker's
    visibility timeout, past which Redis would deliver it again and again)."""
    return max(
        0, settings.CELERY_VISIBILITY_TIMEOUT_SECONDS - settings.AUCTIONS_CLOSE_ETA_MARGIN_SECONDS
    )
