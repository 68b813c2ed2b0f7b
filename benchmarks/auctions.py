"""One hot auction, 32 concurrent bidders: the real bid service beside PostgreSQL's ceiling.

The service side runs ``bid_place`` (locked read of the auction and the bidder's eligibility,
proxy engine, one insert-and-update statement, commit, live-update publish after commit) from
32 processes, each with its own database connection, on one auction. The ceiling side does
the same lock-insert-update on another auction in raw psycopg with no framework at all:
``SELECT ... FOR UPDATE``, the engine's decision, the same insert-and-update statement,
``COMMIT``. Bidders' maximums rise with the machine's monotonic clock, so under contention a
bid that waited for the lock may fall below the moving minimum and be refused, on both sides
alike. The two sides alternate in half-second slices, in step across all processes, so other
load on the machine falls on both alike; the headline is the ratio of accepted bids per
second. The run ends by replaying every auction's bids through the proxy engine and checking
each stored price and leader.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from datetime import timedelta
from typing import Any

BIDDERS = int(os.environ.get("BENCH_AUCTION_BIDDERS", "32"))
SLICE_SECONDS = float(os.environ.get("BENCH_AUCTION_SLICE_SECONDS", "0.5"))
SLICES_EACH = int(os.environ.get("BENCH_AUCTION_SLICES", "16"))
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


def _wait_until(start_at: float) -> None:
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)


def _amount_now() -> int:
    """A maximum that rises across all processes (one CLOCK_MONOTONIC in the machine)."""
    return time.monotonic_ns() // 1_000


def _service_attempt(*, auction_id: int, bidder: Any) -> bool:
    from gavel.auctions.services.bidding import bid_place
    from gavel.common.errors import ServiceError

    try:
        bid_place(
            auction_id=auction_id, bidder=bidder, max_amount_minor=_amount_now(), currency="USD"
        )
    except ServiceError:
        return False
    return True


def _ceiling_attempt(*, raw: Any, auction_id: int, bidder_id: int, rules: Any) -> bool:
    """The same lock-decide-insert-update in raw psycopg: the proxy decision is the engine's
    pure function (microseconds), everything else is the fewest PostgreSQL round trips."""
    import psycopg

    from gavel.auctions.engine import ProxyState, proxy_bid_apply

    amount = _amount_now()
    accepted = False
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
        accepted = True
    return accepted


def _bidder(index: int, start_at: float, stop_at: float) -> list[int]:
    """One bidder process. Time is cut in slices that alternate between the bid service and
    the raw-SQL ceiling, in step across all processes, so load from anything else on the
    machine falls on both alike. Returns [service accepted, service refused, ceiling accepted,
    ceiling refused]."""
    import psycopg
    from django.db import connection

    from gavel.users.models import User

    service_auction_id, ceiling_auction_id, bidder_ids, rules = _WORK["run"]
    bidder = User.objects.get(pk=bidder_ids[index])
    counts = [0, 0, 0, 0]
    params = {**connection.get_connection_params(), "autocommit": True}
    with psycopg.connect(**params) as raw:
        _wait_until(start_at)
        while (now := time.time()) < stop_at:
            if int((now - start_at) / SLICE_SECONDS) % 2 == 0:
                accepted = _service_attempt(auction_id=service_auction_id, bidder=bidder)
                counts[0 if accepted else 1] += 1
            else:
                accepted = _ceiling_attempt(
                    raw=raw, auction_id=ceiling_auction_id, bidder_id=bidder.pk, rules=rules
                )
                counts[2 if accepted else 3] += 1
    connection.close()
    return counts


def _run_bidders() -> list[int]:
    """BIDDERS forked processes (as production runs many worker processes, and so no GIL sits
    between a lock holder and its next statement), each with its own connections."""
    from django.db import connections

    connections.close_all()  # children must not share the parent's socket
    context = multiprocessing.get_context("fork")
    start_at = time.time() + 1.5
    stop_at = start_at + 2 * SLICES_EACH * SLICE_SECONDS
    with context.Pool(BIDDERS) as pool:
        results = pool.starmap(_bidder, [(i, start_at, stop_at) for i in range(BIDDERS)])
    return [sum(column) for column in zip(*results, strict=True)]


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

    service_id, ceiling_id, bidder_ids = _setup()
    rules = auction_rules(Auction.objects.get(pk=ceiling_id))
    _WORK["run"] = (service_id, ceiling_id, bidder_ids, rules)
    seconds_each = SLICES_EACH * SLICE_SECONDS
    print(
        f"{BIDDERS} bidder processes, one hot auction per side; bid service and raw-SQL ceiling "
        f"alternate every {SLICE_SECONDS} s, {seconds_each:.0f} s each"
    )
    service_accepted, service_refused, ceiling_accepted, ceiling_refused = _run_bidders()
    service_rate = service_accepted / seconds_each
    ceiling_rate = ceiling_accepted / seconds_each
    ratio = service_rate / ceiling_rate if ceiling_rate else 0.0
    print(
        f"bid service : {service_rate:7.0f} accepted bids/s "
        f"({(service_accepted + service_refused) / seconds_each:.0f} attempts/s; "
        f"{service_refused} of {service_accepted + service_refused} fell below the moving minimum)"
    )
    print(
        f"PG ceiling  : {ceiling_rate:7.0f} accepted bids/s "
        f"({(ceiling_accepted + ceiling_refused) / seconds_each:.0f} attempts/s; "
        f"{ceiling_refused} of {ceiling_accepted + ceiling_refused} fell below the moving minimum)"
    )
    verdict = "meets" if ratio >= TARGET_RATIO else "BELOW"
    print(f"headline    : {ratio:7.1%} of the ceiling ({verdict} the {TARGET_RATIO:.0%} target)")
    auctions, bids = _check_every_auction()
    print(f"proxy rules : {auctions} auction(s), {bids} bids replayed through the engine: OK")
