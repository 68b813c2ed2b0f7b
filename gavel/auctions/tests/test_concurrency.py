"""Many simultaneous bidders on one auction, as real HTTP requests on separate connections."""

from __future__ import annotations

import random
import threading
from datetime import timedelta
from typing import Any

import pytest
import requests
from django.db import connection

from conftest import bearer
from gavel.auctions.engine import proxy_bid_apply, state_initial
from gavel.auctions.models import Auction, Bid
from gavel.auctions.selectors import auction_rules
from gavel.auctions.services.closing import auction_close
from gavel.auctions.tests.factories import auction_make, user_make

BIDDERS = 12
BIDS_EACH = 6


def replay_matches(auction: Auction) -> None:
    """Every stored bid, replayed through the engine in sequence order, gives the stored
    price and leader, and the final state is the auction row's."""
    rules = auction_rules(auction)
    state = state_initial(rules)
    bids = list(Bid.objects.filter(auction=auction, kind=Bid.Kind.BID).order_by("sequence"))
    assert [bid.sequence for bid in bids] == list(range(1, len(bids) + 1))
    for bid in bids:
        decision = proxy_bid_apply(
            rules, state, bidder_id=bid.bidder_id, max_minor=bid.max_amount_minor
        )
        assert decision.accepted, (bid.sequence, decision.refusal_code)
        state = decision.state
        assert (bid.price_after_minor, bid.leader_after_id) == (
            state.price_minor,
            state.leader_id,
        )
    assert (auction.price_minor, auction.leader_id, auction.leader_max_minor) == (
        state.price_minor,
        state.leader_id,
        state.leader_max_minor,
    )
    assert auction.bid_count == len(bids)


@pytest.mark.django_db(transaction=True)
def test_simultaneous_bidders_lose_no_bid_and_keep_one_leader(live_server: Any) -> None:
    auction = auction_make(starting_price_minor=100, reserve_price_minor=3_000)
    bidders = [user_make() for _ in range(BIDDERS)]
    url = f"{live_server.url}/api/v1/auctions/{auction.pk}/bids/place/"
    barrier = threading.Barrier(BIDDERS)
    outcomes: list[tuple[int, str]] = []
    lock = threading.Lock()

    def bid_repeatedly(index: int) -> None:
        generator = random.Random(index)
        session = requests.Session()
        session.headers["Authorization"] = bearer(bidders[index])["HTTP_AUTHORIZATION"]
        barrier.wait()
        amount = 100
        for _ in range(BIDS_EACH):
            amount += generator.randint(1, 400)
            response = session.post(
                url, json={"max_amount_minor": amount, "currency": "USD"}, timeout=30
            )
            code = "" if response.status_code == 201 else response.json()["error"]["code"]
            with lock:
                outcomes.append((response.status_code, code))

    threads = [threading.Thread(target=bid_repeatedly, args=(i,)) for i in range(BIDDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(outcomes) == BIDDERS * BIDS_EACH
    statuses = {status for status, _ in outcomes}
    assert statuses <= {201, 400}, outcomes
    assert {code for status, code in outcomes if status == 400} <= {
        "bid_below_minimum",
        "bid_not_above_own_maximum",
    }
    accepted = sum(1 for status, _ in outcomes if status == 201)
    auction.refresh_from_db()
    assert accepted == Bid.objects.filter(auction=auction).count() == auction.bid_count
    assert auction.version == 1 + accepted
    replay_matches(auction)
    # The leader holds the highest maximum ever bid (earliest on a tie).
    best = Bid.objects.filter(auction=auction).order_by("-max_amount_minor", "sequence").first()
    assert best is not None
    assert auction.leader_id == best.bidder_id


@pytest.mark.django_db(transaction=True)
def test_close_racing_bids_never_loses_or_sells_twice(live_server: Any, settings: Any) -> None:
    settings.AUCTIONS_HANDOFF_TASK = ""
    auction = auction_make(starting_price_minor=100)
    bidders = [user_make() for _ in range(6)]
    url = f"{live_server.url}/api/v1/auctions/{auction.pk}/bids/place/"
    results: list[int] = []
    barrier = threading.Barrier(len(bidders) + 2)

    def bid(index: int) -> None:
        barrier.wait()
        response = requests.post(
            url,
            json={"max_amount_minor": 1_000 + index * 100, "currency": "USD"},
            headers={"Authorization": bearer(bidders[index])["HTTP_AUTHORIZATION"]},
            timeout=30,
        )
        results.append(response.status_code)

    def close() -> None:
        barrier.wait()
        try:
            Auction.objects.filter(pk=auction.pk).update(
                ends_at=auction.starts_at + timedelta(milliseconds=1)
            )
            auction_close(auction_id=auction.pk)
            auction_close(auction_id=auction.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=bid, args=(i,)) for i in range(len(bidders))]
    threads += [threading.Thread(target=close), threading.Thread(target=close)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    auction.refresh_from_db()
    assert auction.status in ("sold", "unsold")
    assert set(results) <= {201, 409}
    assert results.count(201) == auction.bid_count == Bid.objects.filter(auction=auction).count()
    assert auction.transitions.filter(to_status=auction.status).count() == 1
    assert auction.sales.count() == (1 if auction.bid_count else 0)
    replay_matches(auction)


@pytest.mark.django_db(transaction=True)
def test_buy_now_racing_bids_ends_the_auction_exactly_once(live_server: Any, settings: Any) -> None:
    settings.AUCTIONS_HANDOFF_TASK = ""
    auction = auction_make(starting_price_minor=100, buy_now_price_minor=50_000)
    users = [user_make() for _ in range(10)]
    base = f"{live_server.url}/api/v1/auctions/{auction.pk}"
    barrier = threading.Barrier(len(users))
    results: dict[str, list[int]] = {"bid": [], "buy": []}
    lock = threading.Lock()

    def act(index: int) -> None:
        headers = {"Authorization": bearer(users[index])["HTTP_AUTHORIZATION"]}
        barrier.wait()
        if index % 2:
            kind = "buy"
            response = requests.post(f"{base}/buy-now/", headers=headers, timeout=30)
        else:
            kind = "bid"
            response = requests.post(
                f"{base}/bids/place/",
                json={"max_amount_minor": 1_000 + index, "currency": "USD"},
                headers=headers,
                timeout=30,
            )
        with lock:
            results[kind].append(response.status_code)

    threads = [threading.Thread(target=act, args=(i,)) for i in range(len(users))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    auction.refresh_from_db()
    bought = results["buy"].count(201)
    assert bought <= 1
    assert set(results["buy"]) <= {201, 409}
    assert set(results["bid"]) <= {201, 400, 409}
    bids = list(Bid.objects.filter(auction=auction).order_by("sequence"))
    assert len(bids) == auction.bid_count
    if bought:
        assert (auction.status, auction.outcome) == ("sold", "bought_now")
        assert bids[-1].kind == "buy_now"
        assert all(bid.kind == "bid" for bid in bids[:-1])
        # Buy-now was only available because no bid had come in before it.
        assert len(bids) == 1
        assert auction.sales.count() == 1
    else:
        assert auction.status == "active"
        assert auction.sales.count() == 0
        replay_matches(auction)
