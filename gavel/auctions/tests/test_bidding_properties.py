"""The real bid service (PostgreSQL, row lock, one-statement write) against the reference
model: random rules and bid sequences, every stored bid and the auction row checked."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gavel.auctions.engine import AuctionRules
from gavel.auctions.models import Auction, Bid
from gavel.auctions.services.bidding import bid_place
from gavel.auctions.tests.factories import auction_make, user_make
from gavel.auctions.tests.test_engine import ReferenceAuction, auction_rules
from gavel.common.errors import ServiceError
from gavel.users.models import User


@pytest.fixture
def bidders(db: None) -> list[User]:
    return [user_make() for _ in range(3)]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rules=auction_rules(), data=st.data())
def test_bid_service_matches_the_reference_model(
    bidders: list[User], rules: AuctionRules, data: st.DataObject
) -> None:
    auction = auction_make(
        starting_price_minor=rules.starting_price_minor,
        reserve_price_minor=rules.reserve_price_minor,
        increment_table=[list(row) for row in rules.increment_table],
    )
    reference = ReferenceAuction(rules)
    for _ in range(data.draw(st.integers(1, 12))):
        index = data.draw(st.integers(0, len(bidders) - 1))
        amount = data.draw(st.integers(1, reference.price + 2_000))
        expected = reference.place(bidders[index].pk, amount)
        if expected:
            with pytest.raises(ServiceError) as raised:
                bid_place(
                    auction_id=auction.pk,
                    bidder=bidders[index],
                    max_amount_minor=amount,
                    currency="USD",
                )
            assert raised.value.code == expected
            continue
        result = bid_place(
            auction_id=auction.pk, bidder=bidders[index], max_amount_minor=amount, currency="USD"
        )
        assert (result.state.price_minor, result.is_leading) == (
            reference.price,
            reference.leader == bidders[index].pk,
        )
    stored = Auction.objects.get(pk=auction.pk)
    assert (stored.price_minor, stored.leader_id, stored.bid_count) == (
        reference.price,
        reference.leader,
        len(reference.bids),
    )
    assert list(
        Bid.objects.filter(auction=auction)
        .order_by("sequence")
        .values_list("bidder_id", "max_amount_minor")
    ) == [(bidder, amount) for bidder, amount, _ in reference.bids]
