"""Wrong users on the auctions API: a buyer or another seller on someone's auction, the
seller or the winner on a runner-up's offer, strangers on lists of someone else's things.
Each is refused (or shown nothing) and nothing changes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from conftest import client_for
from gavel.auctions.models import Auction, PaymentMethodSetup, Sale, SecondChanceOffer
from gavel.auctions.services.bidding import bid_place
from gavel.auctions.services.closing import auction_close
from gavel.auctions.services.sales import sale_payment_failed, sales_unpaid_cancel_due
from gavel.auctions.tests.factories import auction_make, user_make

pytestmark = pytest.mark.django_db


def _auction_state(auction: Auction) -> tuple[Any, ...]:
    auction.refresh_from_db()
    return (auction.title, auction.status, auction.version, auction.starting_price_minor)


def test_only_the_seller_or_staff_edit_or_cancel_an_auction() -> None:
    seller = user_make(seller=True)
    auction = auction_make(seller=seller)
    before = _auction_state(auction)
    for intruder in (user_make(), user_make(seller=True)):
        client = client_for(intruder)
        edit = client.patch(
            f"/api/v1/auctions/{auction.pk}/update/",
            {"title": "Mine now", "starting_price_minor": 1},
            format="json",
        )
        assert (edit.status_code, edit.json()["error"]["code"]) == (403, "not_your_auction")
        cancel = client.post(f"/api/v1/auctions/{auction.pk}/cancel/")
        assert (cancel.status_code, cancel.json()["error"]["code"]) == (403, "not_your_auction")
        assert _auction_state(auction) == before


def test_a_runner_ups_offer_refuses_the_seller_the_winner_and_staff(settings: Any) -> None:
    settings.AUCTIONS_UNPAID_WINDOW_SECONDS = 0
    seller, winner, runner_up = user_make(seller=True), user_make(), user_make()
    staff = user_make(is_staff=True)
    auction = auction_make(seller=seller)
    bid_place(auction_id=auction.pk, bidder=runner_up, max_amount_minor=800, currency="USD")
    bid_place(auction_id=auction.pk, bidder=winner, max_amount_minor=900, currency="USD")
    result = auction_close(auction_id=auction.pk, now=auction.ends_at)
    assert result is not None
    assert result.sale_id is not None
    sale_payment_failed(sale_id=result.sale_id)
    sales_unpaid_cancel_due(now=timezone.now() + timedelta(seconds=1))
    offer = SecondChanceOffer.objects.get()
    sales_before = list(Sale.objects.order_by("pk").values_list("pk", "status", "buyer_id"))
    for intruder in (seller, winner, staff):
        for action in ("accept", "decline"):
            response = client_for(intruder).post(
                f"/api/v1/second-chance-offers/{offer.pk}/{action}/"
            )
            assert (response.status_code, response.json()["error"]["code"]) == (
                403,
                "not_your_offer",
            ), (intruder, action)
    offer.refresh_from_db()
    assert offer.status == SecondChanceOffer.Status.OFFERED
    assert list(Sale.objects.order_by("pk").values_list("pk", "status", "buyer_id")) == (
        sales_before
    )


def test_a_sale_is_hidden_from_another_seller() -> None:
    seller, buyer, other_seller = user_make(seller=True), user_make(), user_make(seller=True)
    auction = auction_make(seller=seller, buy_now_price_minor=9_000)
    sale_id = client_for(buyer).post(f"/api/v1/auctions/{auction.pk}/buy-now/").json()["id"]
    response = client_for(other_seller).get(f"/api/v1/sales/{sale_id}/")
    assert (response.status_code, response.json()["error"]["code"]) == (403, "not_your_sale")
    assert client_for(other_seller).get("/api/v1/sales/").json()["results"] == []


def test_my_bids_and_payment_methods_show_only_my_own() -> None:
    bidder, stranger = user_make(), user_make(eligible=False)
    auction = auction_make(starting_price_minor=100)
    bid_place(auction_id=auction.pk, bidder=bidder, max_amount_minor=1_000, currency="USD")
    assert len(client_for(bidder).get("/api/v1/me/bids/").json()["results"]) == 1
    assert len(client_for(bidder).get("/api/v1/payment-methods/").json()["results"]) == 1
    assert client_for(stranger).get("/api/v1/me/bids/").json()["results"] == []
    assert client_for(stranger).get("/api/v1/payment-methods/").json()["results"] == []


def test_another_members_payment_method_setup_cannot_be_refreshed() -> None:
    owner, stranger = user_make(), user_make()
    setup = PaymentMethodSetup.objects.get(user=owner)
    before = (setup.status, setup.updated_at)
    response = client_for(stranger).post(f"/api/v1/payment-methods/setup/{setup.pk}/refresh/")
    assert (response.status_code, response.json()["error"]["code"]) == (403, "not_your_setup")
    setup.refresh_from_db()
    assert (setup.status, setup.updated_at) == before
