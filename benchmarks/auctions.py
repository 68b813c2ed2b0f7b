"""One hot auction, 32 concurrent bidders: the real bid service beside PostgreSQL's ceiling.

The service phase runs ``bid_place`` (locked read of the auction and the bidder's eligibility,
proxy engine, one insert-and-update statement, commit, live-update publish after commit) from
32 processes, each with its own database connection, on one auction. The ceiling phase does
the same lock-insert-update on another auction in raw psycopg with no framework at all:
``SELECT ... FOR UPDATE``, the engine's decision, the same insert-and-update statement,
``COMMIT``. Bidders' maximums rise with the machine's monotonic clock, so under contention a
bid that waited for the lock may fall below the moving minimum and be refused, in both phases
alike. The phases alternate for a few rounds and the headline is the median ratio of accepted
bids per second. The run ends by replaying every auction's bids through the proxy engine and
checking each stored price and leader.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

BIDDERS = int(os.environ.get("BENCH_AUCTION_BIDDERS", "32"))
PHASE_SECONDS = float(os.environ.get("BENCH_AUCTION_SECONDS", "4"))
# Service and ceiling phases alternate, so a noisy neighbour on the machine hits both alike;
# the headline is the median of the rounds' ratios.
ROUNDS = int(os.environ.get("BENCH_AUCTION_ROUNDS", "3"))
TARGET_RATIO = 0.5


def _setup() -> tuple[int, int, list[int]]:
    from django.utils import timezone

    from gavel.auctions.models import (
        BuyerCustomer,
        PaymentMethodSetup,
        VerifiedPaymentMethod,
    )
    from gavel.auctions.services import listing
    from gavel.users.models import User

    seller = User.objects.create_user(email="bench-seller@example.com", is_seller=True)
    bidder_ids = []
    for index in range(BIDDERS):
        user = User.objects.create_user(email=f"bench-bidder-{index}@example.com")
        customer = BuyerCustomer.objects.create(user=user, stripe_customer_id=f"cus_bench_{index}")
        setup = PaymentMethodSetup.objects.create(
            user=user,
            customer=customer,
            stripe_setup_intent_id=f"seti_bench_{index}",
            status=PaymentMethodSetup.Status.SUCCEEDED,
        )
        VerifiedPaymentMethod.objects.create(
            user=user, setup=setup, stripe_payment_method_id=f"pm_bench_{index}", last4="4242"
        )
        bidder_ids.append(user.pk)
    # Who may sell is Connect's question (an onboarded Stripe account); this benchmark
    # measures bidding, so the seller role alone lets the bench seller list.
    listing.seller_can_list = lambda *, user: (True, "")  # type: ignore[attr-defined]
    now = timezone.now()
    terms = {
        "seller": seller,
        "title": "Benchmark lot",
        "category": "bench",
        "currency": "USD",
        "starts_at": now,
        "ends_at": now + timedelta(hours=1),
        "starting_price_minor": 1,
        "increment_table": [[0, 1]],
        "soft_close_seconds": 0,
    }
    hot = listing.auction_create(**terms)  # type: ignore[arg-type]
    ceiling = listing.auction_create(**terms)  # type: ignore[arg-type]
    return hot.pk, ceiling.pk, bidder_ids


def _run_bidders(worker: Callable[[int, float, float], tuple[int, int]]) -> tuple[int, int, float]:
    """Run ``worker(index, start_at, stop_at)`` in BIDDERS forked processes (as production runs
    many worker processes, and so no GIL sits between a lock holder and its next statement);
    each opens its own database connection. Returns (accepted, refused, seconds)."""
    from django.db import connections

    connections.close_all()  # children must not share the parent's socket
    context = multiprocessing.get_context("fork")
    start_at = time.time() + 1.0
    stop_at = start_at + PHASE_SECONDS
    with context.Pool(BIDDERS) as pool:
        results = pool.starmap(worker, [(i, start_at, stop_at) for i in range(BIDDERS)])
    return sum(a for a, _ in results), sum(b for _, b in results), PHASE_SECONDS


def _wait_until(start_at: float) -> None:
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)


def _amount_now() -> int:
    """A maximum that rises across all processes (one CLOCK_MONOTONIC in the machine)."""
    return time.monotonic_ns() // 1_000


def _service_worker(index: int, start_at: float, stop_at: float) -> tuple[int, int]:
    from django.db import connection

    from gavel.auctions.services.bidding import bid_place
    from gavel.common.errors import ServiceError
    from gavel.users.models import User

    auction_id, bidder_ids = _WORK["service"]
    bidder = User.objects.get(pk=bidder_ids[index])
    accepted = refused = 0
    _wait_until(start_at)
    while time.time() < stop_at:
        try:
            bid_place(
                auction_id=auction_id,
                bidder=bidder,
                max_amount_minor=_amount_now(),
                currency="USD",
            )
            accepted += 1
        except ServiceError:
            refused += 1
    connection.close()
    return accepted, refused


def _ceiling_worker(index: int, start_at: float, stop_at: float) -> tuple[int, int]:
    """The same lock-decide-insert-update in raw SQL: the proxy decision is the engine's pure
    function (microseconds), everything else is the fewest PostgreSQL round trips."""
    import psycopg
    from django.db import connection

    from gavel.auctions.engine import ProxyState, proxy_bid_apply

    auction_id, bidder_ids, rules = _WORK["ceiling"]
    accepted = refused = 0
    bidder_id = bidder_ids[index]
    params = {**connection.get_connection_params(), "autocommit": True}
    with psycopg.connect(**params) as raw:
        _wait_until(start_at)
        while time.time() < stop_at:
            amount = _amount_now()
            refused_now = False
            with raw.transaction() as transaction, raw.cursor() as cursor:
                cursor.execute(
                    "SELECT price_minor, leader_id, leader_max_minor, bid_count, ends_at "
                    "FROM auctions_auction WHERE id = %s FOR UPDATE",
                    (auction_id,),
                )
                row = cursor.fetchone()
                assert row is not None
                price, leader_id, leader_max, bid_count, ends_at = row
                decision = proxy_bid_apply(
                    rules,
                    ProxyState(price, leader_id, leader_max, bid_count),
                    bidder_id=bidder_id,
                    max_minor=amount,
                )
                if not decision.accepted:
                    refused_now = True
                    raise psycopg.Rollback(transaction)
                state = decision.state
                cursor.execute(
                    "WITH new_bid AS (INSERT INTO auctions_bid (auction_id, bidder_id, kind, "
                    "sequence, max_amount_minor, currency, price_after_minor, leader_after_id, "
                    "ends_at_after, created_at) VALUES (%s, %s, 'bid', %s, %s, 'USD', %s, %s, "
                    "%s, now()) RETURNING id) "
                    "UPDATE auctions_auction SET price_minor = %s, leader_id = %s, "
                    "leader_max_minor = %s, bid_count = bid_count + 1, version = version + 1, "
                    "updated_at = now() WHERE id = %s RETURNING (SELECT id FROM new_bid)",
                    (
                        auction_id,
                        bidder_id,
                        state.bid_count,
                        amount,
                        state.price_minor,
                        state.leader_id,
                        ends_at,
                        state.price_minor,
                        state.leader_id,
                        state.leader_max_minor,
                        auction_id,
                    ),
                )
            refused += refused_now
            accepted += not refused_now
    return accepted, refused


def _check_every_auction() -> tuple[int, int]:
    from gavel.auctions.engine import proxy_bid_apply, state_initial
    from gavel.auctions.models import Auction, Bid
    from gavel.auctions.selectors import auction_rules

    auctions = bids_checked = 0
    for auction in Auction.objects.order_by("pk"):
        rules = auction_rules(auction)
        state = state_initial(rules)
        bids = list(Bid.objects.filter(auction=auction).order_by("sequence"))
        if [bid.sequence for bid in bids] != list(range(1, len(bids) + 1)):
            raise AssertionError(f"auction {auction.pk}: gaps in bid sequence")
        for bid in bids:
            decision = proxy_bid_apply(
                rules, state, bidder_id=bid.bidder_id, max_minor=bid.max_amount_minor
            )
            state = decision.state
            if not decision.accepted or (bid.price_after_minor, bid.leader_after_id) != (
                state.price_minor,
                state.leader_id,
            ):
                raise AssertionError(f"auction {auction.pk}: bid {bid.sequence} breaks the rules")
        if (auction.price_minor, auction.leader_id, auction.bid_count) != (
            state.price_minor,
            state.leader_id,
            len(bids),
        ):
            raise AssertionError(f"auction {auction.pk}: stored state differs from the replay")
        auctions += 1
        bids_checked += len(bids)
    return auctions, bids_checked


_WORK: dict[str, Any] = {}


def main() -> None:
    from gavel.auctions.models import Auction
    from gavel.auctions.selectors import auction_rules

    hot_id, ceiling_id, bidder_ids = _setup()
    _WORK["service"] = (hot_id, bidder_ids)
    _WORK["ceiling"] = (ceiling_id, bidder_ids, auction_rules(Auction.objects.get(pk=ceiling_id)))
    print(
        f"{BIDDERS} bidder processes, {ROUNDS} rounds of {PHASE_SECONDS:.0f} s per phase, "
        "one auction per phase kind"
    )
    ratios = []
    for round_number in range(1, ROUNDS + 1):
        accepted, refused, seconds = _run_bidders(_service_worker)
        ceiling_accepted, ceiling_refused, ceiling_seconds = _run_bidders(_ceiling_worker)
        service_rate = accepted / seconds
        ceiling_rate = ceiling_accepted / ceiling_seconds
        ratios.append(service_rate / ceiling_rate if ceiling_rate else 0.0)
        service_attempts = (accepted + refused) / seconds
        ceiling_attempts = (ceiling_accepted + ceiling_refused) / ceiling_seconds
        print(
            f"round {round_number}: bid service {service_rate:6.0f} accepted bids/s "
            f"({service_attempts:.0f} attempts/s) | PG ceiling {ceiling_rate:6.0f} accepted "
            f"bids/s ({ceiling_attempts:.0f} attempts/s) | ratio {ratios[-1]:.1%}"
        )
    ratio = statistics.median(ratios)
    verdict = "meets" if ratio >= TARGET_RATIO else "BELOW"
    print(
        f"headline: bid service at {ratio:.1%} of the PostgreSQL ceiling (median of {ROUNDS} "
        f"rounds; {verdict} the {TARGET_RATIO:.0%} target)"
    )
    auctions, bids = _check_every_auction()
    print(f"proxy rules : {auctions} auction(s), {bids} bids replayed through the engine: OK")
