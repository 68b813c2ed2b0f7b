"""Property tests: the incremental proxy engine against a reference model of the rules."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gavel.auctions.engine import (
    BID_BELOW_MINIMUM,
    BID_NOT_ABOVE_OWN_MAXIMUM,
    AuctionRules,
    IncrementTableError,
    ProxyState,
    increment_at,
    increment_table_validate,
    minimum_bid,
    proxy_bid_apply,
    reserve_met,
    state_initial,
)

EBAY = increment_table_validate(
    [
        (0, 5),
        (100, 25),
        (500, 50),
        (2_500, 100),
        (10_000, 250),
        (25_000, 500),
        (50_000, 1_000),
        (100_000, 2_500),
        (250_000, 5_000),
        (500_000, 10_000),
    ]
)


@dataclass
class ReferenceAuction:
    """The rules as plainly as they can be said, over every maximum ever bid: the leader is
    the highest maximum (earliest on ties) and the price follows the two best maximums."""

    rules: AuctionRules
    bids: list[tuple[int, int, int]] = field(default_factory=list)  # (bidder, max, sequence)
    price: int = 0
    leader: int | None = None

    def __post_init__(self) -> None:
        self.price = self.rules.starting_price_minor

    def best_of_each(self) -> list[tuple[int, int, int]]:
        best: dict[int, tuple[int, int, int]] = {}
        for bidder, amount, sequence in self.bids:
            if bidder not in best or amount > best[bidder][1]:
                best[bidder] = (bidder, amount, sequence)
        return sorted(best.values(), key=lambda item: (-item[1], item[2]))

    def place(self, bidder: int, amount: int) -> str:
        table = self.rules.increment_table
        minimum = (
            self.rules.starting_price_minor
            if not self.bids
            else self.price + increment_at(table, self.price)
        )
        ranking = self.best_of_each()
        if self.leader == bidder:
            if amount <= ranking[0][1]:
                return BID_NOT_ABOVE_OWN_MAXIMUM
            if amount < minimum:
                return BID_BELOW_MINIMUM
            self.bids.append((bidder, amount, len(self.bids) + 1))
        else:
            if amount < minimum:
                return BID_BELOW_MINIMUM
            self.bids.append((bidder, amount, len(self.bids) + 1))
            ranking = self.best_of_each()
            self.leader = ranking[0][0]
            if len(ranking) == 1:
                self.price = self.rules.starting_price_minor
            else:
                second = ranking[1][1]
                self.price = min(ranking[0][1], second + increment_at(table, second))
        reserve = self.rules.reserve_price_minor
        if reserve is not None and self.best_of_each()[0][1] >= reserve:
            self.price = max(self.price, reserve)
        return ""


@st.composite
def increment_tables(draw: st.DrawFn) -> tuple[tuple[int, int], ...]:
    if draw(st.booleans()):
        return EBAY
    bounds = draw(st.lists(st.integers(1, 5_000), max_size=4, unique=True))
    rows = [(0, draw(st.integers(1, 50)))]
    rows += [(bound, draw(st.integers(1, 500))) for bound in sorted(bounds)]
    return tuple(rows)


@st.composite
def auction_rules(draw: st.DrawFn) -> AuctionRules:
    starting = draw(st.integers(1, 2_000))
    reserve = draw(st.none() | st.integers(starting, starting + 5_000))
    return AuctionRules(starting, reserve, draw(increment_tables()))


@settings(max_examples=400, deadline=None)
@given(rules=auction_rules(), data=st.data())
def test_engine_matches_reference_model(rules: AuctionRules, data: st.DataObject) -> None:
    reference = ReferenceAuction(rules)
    state = state_initial(rules)
    for _ in range(data.draw(st.integers(1, 25))):
        bidder = data.draw(st.integers(1, 4))
        floor = minimum_bid(rules, state)
        amount = data.draw(
            st.one_of(
                st.integers(max(1, floor - 10), floor + 10),
                st.integers(1, floor + 3_000),
                st.just(state.leader_max_minor),
                st.just(state.leader_max_minor + 1),
            ).filter(lambda value: value > 0)
        )
        before = state
        decision = proxy_bid_apply(rules, state, bidder_id=bidder, max_minor=amount)
        expected_refusal = reference.place(bidder, amount)
        assert decision.refusal_code == expected_refusal
        assert decision.accepted is (expected_refusal == "")
        state = decision.state
        assert state.price_minor == reference.price
        assert state.leader_id == reference.leader
        if not decision.accepted:
            assert state == before
            continue
        # Invariants that hold after every accepted bid.
        assert state.bid_count == before.bid_count + 1
        assert state.price_minor >= before.price_minor
        assert rules.starting_price_minor <= state.price_minor <= state.leader_max_minor
        assert state.leader_max_minor == reference.best_of_each()[0][1]
        if bidder == before.leader_id:
            reserve_lifted = (
                rules.reserve_price_minor is not None
                and not reserve_met(rules, before)
                and amount >= rules.reserve_price_minor
            )
            assert state.price_minor == (
                rules.reserve_price_minor if reserve_lifted else before.price_minor
            )
        if reserve_met(rules, state) and rules.reserve_price_minor is not None:
            assert state.price_minor >= rules.reserve_price_minor


RULES = AuctionRules(starting_price_minor=100, reserve_price_minor=None, increment_table=EBAY)


def _apply(rules: AuctionRules, bids: list[tuple[int, int]]) -> ProxyState:
    state = state_initial(rules)
    for bidder, amount in bids:
        decision = proxy_bid_apply(rules, state, bidder_id=bidder, max_minor=amount)
        assert decision.accepted, decision
        state = decision.state
    return state


def test_visible_price_is_one_increment_above_second_maximum() -> None:
    state = _apply(RULES, [(1, 1_000), (2, 600)])
    assert (state.leader_id, state.price_minor) == (1, 650)


def test_price_is_capped_at_the_leaders_maximum() -> None:
    state = _apply(RULES, [(1, 1_000), (2, 990)])
    assert (state.leader_id, state.price_minor) == (1, 1_000)


def test_equal_maximums_the_earlier_bid_leads() -> None:
    state = _apply(RULES, [(1, 1_000), (2, 1_000)])
    assert (state.leader_id, state.price_minor) == (1, 1_000)


def test_leader_raising_own_maximum_keeps_the_price() -> None:
    state = _apply(RULES, [(1, 1_000), (2, 600), (1, 5_000)])
    assert (state.leader_id, state.price_minor, state.leader_max_minor) == (1, 650, 5_000)
    refused = proxy_bid_apply(RULES, state, bidder_id=1, max_minor=5_000)
    assert refused.refusal_code == BID_NOT_ABOVE_OWN_MAXIMUM


def test_reserve_lifts_the_price_straight_to_it() -> None:
    rules = AuctionRules(100, 2_000, EBAY)
    state = _apply(rules, [(1, 500)])
    assert (state.price_minor, reserve_met(rules, state)) == (100, False)
    state = _apply(rules, [(1, 500), (2, 3_000)])
    assert (state.leader_id, state.price_minor, reserve_met(rules, state)) == (2, 2_000, True)
    state = _apply(rules, [(1, 500), (1, 2_500)])
    assert (state.price_minor, reserve_met(rules, state)) == (2_000, True)


def test_first_bid_below_start_and_later_bid_below_increment_are_refused() -> None:
    assert proxy_bid_apply(RULES, state_initial(RULES), bidder_id=1, max_minor=99).refusal_code == (
        BID_BELOW_MINIMUM
    )
    state = _apply(RULES, [(1, 100)])
    decision = proxy_bid_apply(RULES, state, bidder_id=2, max_minor=124)
    assert (decision.refusal_code, decision.minimum_bid_minor) == (BID_BELOW_MINIMUM, 125)
    decision = proxy_bid_apply(RULES, state, bidder_id=1, max_minor=110)
    assert (decision.refusal_code, decision.minimum_bid_minor) == (BID_BELOW_MINIMUM, 125)


@pytest.mark.parametrize(
    ("price", "increment"), [(0, 5), (99, 5), (100, 25), (499, 25), (500, 50), (10**9, 10_000)]
)
def test_ebay_increment_bands(price: int, increment: int) -> None:
    assert increment_at(EBAY, price) == increment


@pytest.mark.parametrize(
    "rows",
    [[], [(1, 5)], [(0, 0)], [(0, 5), (0, 10)], [(0, 5, 1)], [(0, True)], [(0, 1.5)]],
)
def test_invalid_increment_tables_are_refused(rows: list[tuple[object, ...]]) -> None:
    with pytest.raises(IncrementTableError):
        increment_table_validate(rows)  # type: ignore[arg-type]
