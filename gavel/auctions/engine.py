"""The proxy-bidding engine: pure functions over an auction's visible state, no database.

The rules (eBay's; docs/auctions.md):

* a bidder states a maximum; the visible price is one increment (taken from the increment
  table at the second-highest maximum) above the second-highest maximum, capped at the
  leader's maximum;
* at equal maximums the earlier bid leads;
* the first bid must be at least the starting price and sets the price to it; later bids must
  be at least the price plus the increment at the price;
* a leader raising their own maximum does not raise the price (the new maximum must exceed the
  old one);
* with a hidden reserve not yet met, a leading maximum at or above the reserve lifts the price
  straight to the reserve.

The engine only needs the current price, the leader and the leader's maximum: every other
bidder's maximum is below the price, so a challenger only ever duels the leader. The property
tests check this against a reference model that re-sorts every maximum ever bid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

IncrementTable = tuple[tuple[int, int], ...]


class IncrementTableError(ValueError):
    """An increment table that cannot price every amount."""


def increment_table_validate(rows: Sequence[Sequence[int]]) -> IncrementTable:
    """Rows of (price from, increment) in minor units; the first starts at 0, strictly rising."""
    table: list[tuple[int, int]] = []
    for row in rows:
        if len(row) != 2:
            raise IncrementTableError("Each row is [price_from_minor, increment_minor].")
        price_from, increment = row[0], row[1]
        if isinstance(price_from, bool) or isinstance(increment, bool):
            raise IncrementTableError("Amounts must be integers.")
        if not isinstance(price_from, int) or not isinstance(increment, int):
            raise IncrementTableError("Amounts must be integers.")
        if increment <= 0:
            raise IncrementTableError("Increments must be positive.")
        if table and price_from <= table[-1][0]:
            raise IncrementTableError("Rows must be in strictly rising price order.")
        table.append((price_from, increment))
    if not table or table[0][0] != 0:
        raise IncrementTableError("The first row must start at price 0.")
    return tuple(table)


def increment_at(table: IncrementTable, price_minor: int) -> int:
    """The increment for a price: the last row whose "price from" is at or below it."""
    increment = table[0][1]
    for price_from, row_increment in table:
        if price_from > price_minor:
            break
        increment = row_increment
    return increment


@dataclass(frozen=True, slots=True)
class AuctionRules:
    starting_price_minor: int
    reserve_price_minor: int | None
    increment_table: IncrementTable


@dataclass(frozen=True, slots=True)
class ProxyState:
    """What the auction row stores: visible price, leader and the leader's (hidden) maximum."""

    price_minor: int
    leader_id: int | None
    leader_max_minor: int
    bid_count: int


@dataclass(frozen=True, slots=True)
class BidDecision:
    accepted: bool
    state: ProxyState
    refusal_code: str = ""
    minimum_bid_minor: int = 0


BID_BELOW_MINIMUM = "bid_below_minimum"
BID_NOT_ABOVE_OWN_MAXIMUM = "bid_not_above_own_maximum"


def state_initial(rules: AuctionRules) -> ProxyState:
    return ProxyState(
        price_minor=rules.starting_price_minor, leader_id=None, leader_max_minor=0, bid_count=0
    )


def minimum_bid(rules: AuctionRules, state: ProxyState) -> int:
    """The lowest maximum a new bid may state."""
    if state.leader_id is None:
        return rules.starting_price_minor
    return state.price_minor + increment_at(rules.increment_table, state.price_minor)


def reserve_met(rules: AuctionRules, state: ProxyState) -> bool:
    if state.leader_id is None:
        return False
    return rules.reserve_price_minor is None or state.leader_max_minor >= rules.reserve_price_minor


def proxy_bid_apply(
    rules: AuctionRules, state: ProxyState, *, bidder_id: int, max_minor: int
) -> BidDecision:
    """Apply one maximum bid; a refused bid returns the state unchanged with a reason."""
    minimum = minimum_bid(rules, state)
    table = rules.increment_table
    if state.leader_id is None:
        if max_minor < minimum:
            return BidDecision(False, state, BID_BELOW_MINIMUM, minimum)
        new_state = ProxyState(rules.starting_price_minor, bidder_id, max_minor, 1)
    elif bidder_id == state.leader_id:
        if max_minor <= state.leader_max_minor:
            return BidDecision(False, state, BID_NOT_ABOVE_OWN_MAXIMUM, minimum)
        if max_minor < minimum:
            return BidDecision(False, state, BID_BELOW_MINIMUM, minimum)
        new_state = replace(state, leader_max_minor=max_minor, bid_count=state.bid_count + 1)
    else:
        if max_minor < minimum:
            return BidDecision(False, state, BID_BELOW_MINIMUM, minimum)
        leader_max = state.leader_max_minor
        if max_minor > leader_max:
            price = min(max_minor, leader_max + increment_at(table, leader_max))
            new_state = ProxyState(price, bidder_id, max_minor, state.bid_count + 1)
        else:
            # Equal maximums: the earlier bid (the leader's) keeps the lead.
            price = min(leader_max, max_minor + increment_at(table, max_minor))
            new_state = replace(state, price_minor=price, bid_count=state.bid_count + 1)
    reserve = rules.reserve_price_minor
    if (
        reserve is not None
        and new_state.leader_max_minor >= reserve
        and new_state.price_minor < reserve
    ):
        new_state = replace(new_state, price_minor=reserve)
    return BidDecision(True, new_state, "", minimum)
