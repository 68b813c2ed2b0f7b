from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from gavel.auctions.models import Auction, AuctionExtension, Bid, Sale
from gavel.auctions.services.bidding import auction_buy_now, bid_place
from gavel.auctions.tests.factories import auction_make, user_make
from gavel.common.errors import ServiceError

pytestmark = pytest.mark.django_db


def _snapshot(auction: Auction) -> tuple[object, ...]:
    auction.refresh_from_db()
    return (
        Bid.objects.count(),
        AuctionExtension.objects.count(),
        Sale.objects.count(),
        auction.price_minor,
        auction.leader_id,
        auction.leader_max_minor,
        auction.bid_count,
        auction.version,
        auction.ends_at,
    )


def _refused(auction: Auction, code: str, status_code: int, **kwargs: object) -> None:
    before = _snapshot(auction)
    with pytest.raises(ServiceError) as raised:
        bid_place(auction_id=auction.pk, **kwargs)  # type: ignore[arg-type]
    assert (raised.value.code, raised.value.status_code) == (code, status_code)
    assert _snapshot(auction) == before


def test_proxy_bids_set_price_leader_and_history() -> None:
    auction = auction_make(starting_price_minor=100)
    alice, bob = user_make(), user_make()
    first = bid_place(auction_id=auction.pk, bidder=alice, max_amount_minor=1_000, currency="usd")
    assert (first.is_leading, first.state.price_minor, first.state.minimum_bid_minor) == (
        True,
        100,
        125,
    )
    second = bid_place(auction_id=auction.pk, bidder=bob, max_amount_minor=600, currency="USD")
    assert (second.is_leading, second.state.price_minor) == (False, 650)
    auction.refresh_from_db()
    assert (auction.leader_id, auction.price_minor, auction.leader_max_minor) == (
        alice.pk,
        650,
        1_000,
    )
    assert (auction.bid_count, auction.version) == (2, 3)
    bids = list(Bid.objects.filter(auction=auction).order_by("sequence"))
    assert [(b.sequence, b.bidder_id, b.price_after_minor, b.leader_after_id) for b in bids] == [
        (1, alice.pk, 100, alice.pk),
        (2, bob.pk, 650, alice.pk),
    ]


def test_refused_bids_write_nothing() -> None:
    seller = user_make(seller=True)
    auction = auction_make(seller=seller, starting_price_minor=100)
    alice, bob = user_make(), user_make()
    bid_place(auction_id=auction.pk, bidder=alice, max_amount_minor=200, currency="USD")
    _refused(auction, "bid_below_minimum", 400, bidder=bob, max_amount_minor=124, currency="USD")
    _refused(
        auction,
        "bid_not_above_own_maximum",
        400,
        bidder=alice,
        max_amount_minor=200,
        currency="USD",
    )
    _refused(auction, "own_auction", 403, bidder=seller, max_amount_minor=500, currency="USD")
    _refused(auction, "currency_mismatch", 400, bidder=bob, max_amount_minor=500, currency="EUR")
    _refused(auction, "currency_mismatch", 400, bidder=bob, max_amount_minor=500, currency="XXX")
    _refused(auction, "invalid_amount", 400, bidder=bob, max_amount_minor=-5, currency="USD")
    _refused(auction, "invalid_amount", 400, bidder=bob, max_amount_minor=5.5, currency="USD")
    _refused(auction, "invalid_amount", 400, bidder=bob, max_amount_minor=True, currency="USD")
    ineligible = user_make(eligible=False)
    _refused(
        auction,
        "payment_method_required",
        403,
        bidder=ineligible,
        max_amount_minor=500,
        currency="USD",
    )
    with pytest.raises(ServiceError) as raised:
        bid_place(auction_id=auction.pk + 1000, bidder=bob, max_amount_minor=500, currency="USD")
    assert (raised.value.code, raised.value.status_code) == ("auction_not_found", 404)


def test_not_yet_open_and_closed_auctions_refuse_bids() -> None:
    bob = user_make()
    later = auction_make(starts_in=timedelta(hours=1))
    _refused(later, "auction_not_started", 409, bidder=bob, max_amount_minor=500, currency="USD")
    ended = auction_make()
    _refused(
        ended,
        "auction_closed",
        409,
        bidder=bob,
        max_amount_minor=500,
        currency="USD",
        now=ended.ends_at,
    )


def test_hold_required_above_threshold_until_payments_fills_the_seam() -> None:
    auction = auction_make(hold_policy="authorization", hold_threshold_minor=10_000)
    bob = user_make()
    _refused(auction, "hold_required", 403, bidder=bob, max_amount_minor=10_001, currency="USD")
    result = bid_place(auction_id=auction.pk, bidder=bob, max_amount_minor=10_000, currency="USD")
    assert result.is_leading


@pytest.mark.parametrize(
    ("style", "seconds_left", "expected_extension"),
    [
        ("extend_to", 30, 120),  # moved to 120 s after the bid
        ("extend_by", 30, 150),  # 120 s added to the 30 s left
        ("extend_to", 121, None),  # outside the window
        ("extend_by", 120, 240),  # the window's edge counts
    ],
)
def test_soft_close_styles(style: str, seconds_left: int, expected_extension: int | None) -> None:
    now = timezone.now()
    auction = auction_make(now=now, soft_close_seconds=120, soft_close_style=style)
    bid_time = auction.ends_at - timedelta(seconds=seconds_left)
    result = bid_place(
        auction_id=auction.pk,
        bidder=user_make(),
        max_amount_minor=100,
        currency="USD",
        now=bid_time,
    )
    auction.refresh_from_db()
    if expected_extension is None:
        assert (result.extended, auction.extension_count, AuctionExtension.objects.count()) == (
            False,
            0,
            0,
        )
        assert auction.ends_at == auction.scheduled_ends_at
    else:
        assert result.extended
        assert auction.ends_at == bid_time + timedelta(seconds=expected_extension)
        assert auction.extension_count == 1
        extension = AuctionExtension.objects.get()
        assert (extension.previous_ends_at, extension.new_ends_at) == (
            auction.scheduled_ends_at,
            auction.ends_at,
        )


def test_soft_close_off_with_zero_window() -> None:
    auction = auction_make(soft_close_seconds=0)
    result = bid_place(
        auction_id=auction.pk,
        bidder=user_make(),
        max_amount_minor=100,
        currency="USD",
        now=auction.ends_at - timedelta(seconds=1),
    )
    assert not result.extended


def test_buy_now_without_reserve_disappears_at_first_bid() -> None:
    auction = auction_make(buy_now_price_minor=5_000)
    bid_place(auction_id=auction.pk, bidder=user_make(), max_amount_minor=100, currency="USD")
    buyer = user_make()
    with pytest.raises(ServiceError) as raised:
        auction_buy_now(auction_id=auction.pk, buyer=buyer)
    assert raised.value.code == "buy_now_unavailable"
    assert Sale.objects.count() == 0


def test_buy_now_with_reserve_stays_until_the_reserve_is_met() -> None:
    auction = auction_make(reserve_price_minor=2_000, buy_now_price_minor=5_000)
    bidder = user_make()
    bid_place(auction_id=auction.pk, bidder=bidder, max_amount_minor=1_000, currency="USD")
    buyer = user_make()
    sale = auction_buy_now(auction_id=auction.pk, buyer=buyer)
    auction.refresh_from_db()
    assert (sale.kind, sale.amount_minor, sale.buyer_id, sale.status) == (
        "buy_now",
        5_000,
        buyer.pk,
        "awaiting_payment",
    )
    assert (auction.status, auction.outcome, auction.winner_id, auction.hammer_price_minor) == (
        "sold",
        "bought_now",
        buyer.pk,
        5_000,
    )
    assert list(auction.transitions.values_list("from_status", "to_status")) == [
        ("", "active"),
        ("active", "sold"),
    ]
    with pytest.raises(ServiceError) as raised:
        bid_place(auction_id=auction.pk, bidder=bidder, max_amount_minor=9_000, currency="USD")
    assert raised.value.code == "auction_closed"

    met = auction_make(reserve_price_minor=2_000, buy_now_price_minor=5_000)
    bid_place(auction_id=met.pk, bidder=bidder, max_amount_minor=2_000, currency="USD")
    with pytest.raises(ServiceError) as raised:
        auction_buy_now(auction_id=met.pk, buyer=buyer)
    assert raised.value.code == "buy_now_unavailable"


def test_buy_now_refusals() -> None:
    seller = user_make(seller=True)
    auction = auction_make(seller=seller, buy_now_price_minor=5_000)
    no_buy_now = auction_make()
    for kwargs, code in [
        ({"auction_id": auction.pk, "buyer": seller}, "own_auction"),
        ({"auction_id": auction.pk, "buyer": user_make(eligible=False)}, "payment_method_required"),
        ({"auction_id": no_buy_now.pk, "buyer": user_make()}, "buy_now_unavailable"),
        (
            {"auction_id": auction.pk, "buyer": user_make(), "now": auction.ends_at},
            "auction_closed",
        ),
    ]:
        with pytest.raises(ServiceError) as raised:
            auction_buy_now(**kwargs)  # type: ignore[arg-type]
        assert raised.value.code == code
    assert (Sale.objects.count(), Bid.objects.count()) == (0, 0)


def test_two_statement_write_gives_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """The path databases without data-modifying CTEs take (the SQLite demo)."""
    monkeypatch.setattr(
        "gavel.auctions.services.bidding.single_statement_write_supported", lambda: False
    )
    now = timezone.now()
    auction = auction_make(now=now, soft_close_seconds=60)
    alice, bob = user_make(), user_make()
    bid_place(auction_id=auction.pk, bidder=alice, max_amount_minor=1_000, currency="USD")
    late = bid_place(
        auction_id=auction.pk,
        bidder=bob,
        max_amount_minor=600,
        currency="USD",
        now=auction.ends_at - timedelta(seconds=10),
    )
    auction.refresh_from_db()
    assert (auction.price_minor, auction.leader_id, auction.bid_count, auction.version) == (
        650,
        alice.pk,
        2,
        3,
    )
    assert late.extended
    assert auction.extension_count == 1
    assert Bid.objects.get(pk=late.bid.pk).price_after_minor == 650


def test_raw_datetimes_become_aware() -> None:
    from datetime import UTC, datetime

    from gavel.auctions.lock_objects import _aware

    assert _aware("2026-01-02 03:04:05") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert _aware(datetime(2026, 1, 2, tzinfo=UTC)) == datetime(2026, 1, 2, tzinfo=UTC)
