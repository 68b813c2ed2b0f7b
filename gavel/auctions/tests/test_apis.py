"""The auctions API: authorization of every endpoint, the error format, ETags, filters."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from conftest import client_for
from gavel.auctions.models import Auction, Bid, Sale, SecondChanceOffer
from gavel.auctions.services.bidding import bid_place
from gavel.auctions.services.closing import auction_close
from gavel.auctions.services.sales import sale_payment_failed, sales_unpaid_cancel_due
from gavel.auctions.tests.factories import auction_make, user_make

pytestmark = pytest.mark.django_db


def _error(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    assert set(body) == {"type", "code", "message", "fields", "request_id"}
    return body


def _terms(**overrides: Any) -> dict[str, Any]:
    now = timezone.now()
    terms = {
        "title": "Victorian pocket watch",
        "description": "Gold, working",
        "category": "watches",
        "image_urls": ["https://img.example.com/watch.jpg"],
        "currency": "usd",
        "starts_at": now.isoformat(),
        "ends_at": (now + timedelta(days=3)).isoformat(),
        "starting_price_minor": 1_000,
        "reserve_price_minor": 5_000,
        "buy_now_price_minor": 20_000,
    }
    terms.update(overrides)
    return terms


def test_every_endpoint_needs_a_token() -> None:
    anonymous = client_for(None)
    for method, path in [
        ("get", "/api/v1/auctions/"),
        ("post", "/api/v1/auctions/create/"),
        ("get", "/api/v1/auctions/1/"),
        ("patch", "/api/v1/auctions/1/update/"),
        ("post", "/api/v1/auctions/1/cancel/"),
        ("get", "/api/v1/auctions/1/bids/"),
        ("post", "/api/v1/auctions/1/bids/place/"),
        ("post", "/api/v1/auctions/1/buy-now/"),
        ("get", "/api/v1/auctions/1/stream/"),
        ("get", "/api/v1/me/bids/"),
        ("get", "/api/v1/sales/"),
        ("get", "/api/v1/sales/1/"),
        ("get", "/api/v1/second-chance-offers/"),
        ("post", "/api/v1/second-chance-offers/1/accept/"),
        ("post", "/api/v1/second-chance-offers/1/decline/"),
        ("get", "/api/v1/payment-methods/"),
        ("post", "/api/v1/payment-methods/setup/"),
        ("post", "/api/v1/payment-methods/setup/1/refresh/"),
    ]:
        response = getattr(anonymous, method)(path, {}, format="json")
        assert response.status_code == 401, (method, path)
        assert _error(response)["type"] == "authentication_error"


def test_seller_creates_and_edits_until_the_first_bid() -> None:
    seller = user_make(seller=True)
    response = client_for(seller).post("/api/v1/auctions/create/", _terms(), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["currency"], body["price_minor"], body["reserve_price_minor"]) == (
        "USD",
        1_000,
        5_000,
    )
    assert (body["has_reserve"], body["reserve_met"], body["buy_now_available"]) == (
        True,
        False,
        True,
    )
    assert body["soft_close_seconds"] == 120
    assert body["soft_close_style"] == "extend_to"
    auction_id = body["id"]
    edit = client_for(seller).patch(
        f"/api/v1/auctions/{auction_id}/update/",
        {"title": "Gold pocket watch", "starting_price_minor": 1_500},
        format="json",
    )
    assert edit.status_code == 200
    assert (edit.json()["title"], edit.json()["price_minor"], edit.json()["version"]) == (
        "Gold pocket watch",
        1_500,
        2,
    )
    bid_place(auction_id=auction_id, bidder=user_make(), max_amount_minor=1_500, currency="USD")
    refused = client_for(seller).patch(
        f"/api/v1/auctions/{auction_id}/update/", {"title": "Changed"}, format="json"
    )
    assert refused.status_code == 409
    assert _error(refused)["code"] == "auction_has_bids"
    assert Auction.objects.get(pk=auction_id).title == "Gold pocket watch"
    cancel = client_for(seller).post(f"/api/v1/auctions/{auction_id}/cancel/")
    assert (cancel.status_code, _error(cancel)["code"]) == (409, "auction_has_bids")


def test_listing_authorization_and_validation() -> None:
    buyer, seller, other_seller = user_make(), user_make(seller=True), user_make(seller=True)
    staff = user_make(is_staff=True)
    response = client_for(buyer).post("/api/v1/auctions/create/", _terms(), format="json")
    assert (response.status_code, _error(response)["code"]) == (403, "permission_denied")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"starting_price_minor": "10.00"}, "starting_price_minor"),
        ({"starting_price_minor": -1}, "starting_price_minor"),
        ({"reserve_price_minor": 500}, "reserve_price_minor"),
        ({"buy_now_price_minor": 4_000}, "buy_now_price_minor"),
        ({"currency": "ABC"}, "currency"),
        ({"increment_table": [[5, 10]]}, "increment_table"),
        ({"colour": "red"}, "colour"),
        ({"ends_at": timezone.now().isoformat()}, "ends_at"),
    ]
    for bad, field in cases:
        response = client_for(seller).post("/api/v1/auctions/create/", _terms(**bad), format="json")
        assert response.status_code == 400, bad
        assert field in _error(response)["fields"], response.json()
    assert Auction.objects.count() == 0

    auction = auction_make(seller=seller)
    path = f"/api/v1/auctions/{auction.pk}/update/"
    response = client_for(other_seller).patch(path, {"title": "Mine now"}, format="json")
    assert (response.status_code, _error(response)["code"]) == (403, "not_your_auction")
    response = client_for(other_seller).post(f"/api/v1/auctions/{auction.pk}/cancel/")
    assert response.status_code == 403
    response = client_for(staff).patch(path, {"title": "Fixed typo"}, format="json")
    assert response.status_code == 200
    response = client_for(seller).patch(path, {"seller": 1}, format="json")
    assert response.status_code == 400
    response = client_for(seller).post(f"/api/v1/auctions/{auction.pk}/cancel/")
    assert (response.status_code, response.json()["status"]) == (200, "cancelled")
    response = client_for(seller).patch(path, {"title": "Again"}, format="json")
    assert (response.status_code, _error(response)["code"]) == (409, "auction_closed")
    assert client_for(seller).get("/api/v1/auctions/999999/").status_code == 404


def test_bid_refusals_are_clear_4xx_and_write_nothing() -> None:
    seller = user_make(seller=True)
    auction = auction_make(seller=seller, starting_price_minor=500)
    later = auction_make(starts_in=timedelta(hours=2))
    ended = auction_make(now=timezone.now() - timedelta(days=8))
    bidder = user_make()
    ineligible = user_make(eligible=False)
    cases = [
        (bidder, auction, {"max_amount_minor": 499, "currency": "USD"}, 400, "bid_below_minimum"),
        (bidder, later, {"max_amount_minor": 500, "currency": "USD"}, 409, "auction_not_started"),
        (bidder, ended, {"max_amount_minor": 500, "currency": "USD"}, 409, "auction_closed"),
        (seller, auction, {"max_amount_minor": 500, "currency": "USD"}, 403, "own_auction"),
        (bidder, auction, {"max_amount_minor": 500, "currency": "EUR"}, 400, "currency_mismatch"),
        (bidder, auction, {"max_amount_minor": 500.5, "currency": "USD"}, 400, "invalid"),
        (bidder, auction, {"max_amount_minor": "500", "currency": "USD"}, 400, "invalid"),
        (bidder, auction, {"max_amount_minor": -500, "currency": "USD"}, 400, "invalid"),
        (bidder, auction, {"max_amount_minor": 0, "currency": "USD"}, 400, "invalid"),
        (bidder, auction, {"max_amount_minor": 500}, 400, "invalid"),
        (bidder, auction, {"max_amount_minor": 500, "currency": "USD", "x": 1}, 400, "invalid"),
        (
            ineligible,
            auction,
            {"max_amount_minor": 500, "currency": "USD"},
            403,
            "payment_method_required",
        ),
    ]
    for user, target, payload, status_code, code in cases:
        before = (Bid.objects.count(), list(Auction.objects.values_list("version", "price_minor")))
        response = client_for(user).post(
            f"/api/v1/auctions/{target.pk}/bids/place/", payload, format="json"
        )
        assert response.status_code == status_code, (payload, response.json())
        assert _error(response)["code"] == code, (payload, response.json())
        after = (Bid.objects.count(), list(Auction.objects.values_list("version", "price_minor")))
        assert after == before
    assert (
        client_for(bidder)
        .post(
            "/api/v1/auctions/999999/bids/place/",
            {"max_amount_minor": 500, "currency": "USD"},
            format="json",
        )
        .status_code
        == 404
    )


def test_bid_history_masks_bidders_and_my_bids_show_my_maximums() -> None:
    auction = auction_make(starting_price_minor=100)
    alice, bob, staff = user_make(), user_make(), user_make(is_staff=True)
    response = client_for(alice).post(
        f"/api/v1/auctions/{auction.pk}/bids/place/",
        {"max_amount_minor": 1_000, "currency": "USD"},
        format="json",
    )
    assert response.status_code == 201
    assert {k: response.json()[k] for k in ("is_leading", "price_minor", "minimum_bid_minor")} == {
        "is_leading": True,
        "price_minor": 100,
        "minimum_bid_minor": 125,
    }
    bid_place(auction_id=auction.pk, bidder=bob, max_amount_minor=500, currency="USD")
    history = client_for(bob).get(f"/api/v1/auctions/{auction.pk}/bids/").json()["results"]
    assert [
        (h["bidder"], h["is_you"], h["price_after_minor"], h["bidder_id"]) for h in history
    ] == [
        ("Bidder 2", True, 550, None),
        ("Bidder 1", False, 100, None),
    ]
    assert all("max_amount_minor" not in item for item in history)
    staff_view = client_for(staff).get(f"/api/v1/auctions/{auction.pk}/bids/").json()["results"]
    assert [item["bidder_id"] for item in staff_view] == [bob.pk, alice.pk]
    mine = client_for(alice).get("/api/v1/me/bids/").json()["results"]
    assert [(m["max_amount_minor"], m["leading_now"], m["auction_price_minor"]) for m in mine] == [
        (1_000, True, 550)
    ]
    detail = client_for(bob).get(f"/api/v1/auctions/{auction.pk}/").json()
    assert (detail["you_lead"], detail["reserve_price_minor"], detail["bid_count"]) == (
        False,
        None,
        2,
    )


def test_etag_and_304() -> None:
    auction = auction_make()
    viewer = client_for(user_make())
    for path in (f"/api/v1/auctions/{auction.pk}/", f"/api/v1/auctions/{auction.pk}/bids/"):
        first = viewer.get(path)
        etag = first["ETag"]
        assert first.status_code == 200
        assert etag.startswith('"')
        cached = viewer.get(path, HTTP_IF_NONE_MATCH=etag)
        assert cached.status_code == 304
        assert not cached.content
        assert viewer.get(path, HTTP_IF_NONE_MATCH=f'W/{etag}, "other"').status_code == 304
    etag = viewer.get(f"/api/v1/auctions/{auction.pk}/")["ETag"]
    bid_place(auction_id=auction.pk, bidder=user_make(), max_amount_minor=100, currency="USD")
    changed = viewer.get(f"/api/v1/auctions/{auction.pk}/", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag


def test_browse_filter_and_search() -> None:
    seller = user_make(seller=True)
    watch = auction_make(seller=seller, title="Silver watch", category="watches")
    auction_make(title="Oak desk", category="furniture", currency="EUR")
    auction_make(title="Brass clock", category="clocks", starts_in=timedelta(days=1))
    bid_place(auction_id=watch.pk, bidder=user_make(), max_amount_minor=100, currency="USD")
    viewer = client_for(user_make())

    def titles(**query: Any) -> list[str]:
        response = viewer.get("/api/v1/auctions/", query)
        assert response.status_code == 200, response.json()
        return [item["title"] for item in response.json()["results"]]

    assert titles() == ["Brass clock", "Oak desk", "Silver watch"]
    assert titles(category="watches") == ["Silver watch"]
    assert titles(currency="eur") == ["Oak desk"]
    assert titles(search="WATCH") == ["Silver watch"]
    assert titles(seller_id=seller.pk) == ["Silver watch"]
    assert titles(open_only="true") == ["Oak desk", "Silver watch"]
    assert titles(price_min_minor=100, price_max_minor=100) == [
        "Brass clock",
        "Oak desk",
        "Silver watch",
    ]
    assert titles(status="active", limit=1) == ["Brass clock"]
    response = viewer.get("/api/v1/auctions/", {"sort": "price"})
    assert response.status_code == 400
    assert "sort" in _error(response)["fields"]


def test_buy_now_endpoint() -> None:
    auction = auction_make(buy_now_price_minor=9_000)
    buyer = user_make()
    response = client_for(buyer).post(f"/api/v1/auctions/{auction.pk}/buy-now/")
    assert response.status_code == 201
    assert {k: response.json()[k] for k in ("kind", "amount_minor", "buyer", "status")} == {
        "kind": "buy_now",
        "amount_minor": 9_000,
        "buyer": buyer.pk,
        "status": "awaiting_payment",
    }
    again = client_for(user_make()).post(f"/api/v1/auctions/{auction.pk}/buy-now/")
    assert (again.status_code, _error(again)["code"]) == (409, "auction_closed")
    assert Sale.objects.count() == 1


def test_sales_and_offers_visibility_and_actions(settings: Any) -> None:
    settings.AUCTIONS_UNPAID_WINDOW_SECONDS = 0
    seller, winner, runner_up = user_make(seller=True), user_make(), user_make()
    stranger, staff = user_make(), user_make(is_staff=True)
    auction = auction_make(seller=seller)
    bid_place(auction_id=auction.pk, bidder=runner_up, max_amount_minor=800, currency="USD")
    bid_place(auction_id=auction.pk, bidder=winner, max_amount_minor=900, currency="USD")
    result = auction_close(auction_id=auction.pk, now=auction.ends_at)
    assert result is not None
    assert result.sale_id is not None
    sale_path = f"/api/v1/sales/{result.sale_id}/"
    for user, status_code in [(winner, 200), (seller, 200), (staff, 200), (stranger, 403)]:
        assert client_for(user).get(sale_path).status_code == status_code
    assert client_for(stranger).get("/api/v1/sales/999999/").status_code == 404
    assert len(client_for(winner).get("/api/v1/sales/").json()["results"]) == 1
    assert len(client_for(stranger).get("/api/v1/sales/").json()["results"]) == 0
    assert len(client_for(staff).get("/api/v1/sales/").json()["results"]) == 1

    sale_payment_failed(sale_id=result.sale_id)
    sales_unpaid_cancel_due(now=timezone.now() + timedelta(seconds=1))
    offer = SecondChanceOffer.objects.get()
    for user, count in [(runner_up, 1), (seller, 1), (staff, 1), (stranger, 0)]:
        listed = client_for(user).get("/api/v1/second-chance-offers/").json()["results"]
        assert len(listed) == count
    accept = f"/api/v1/second-chance-offers/{offer.pk}/accept/"
    response = client_for(stranger).post(accept)
    assert (response.status_code, _error(response)["code"]) == (403, "not_your_offer")
    response = client_for(stranger).post(f"/api/v1/second-chance-offers/{offer.pk}/decline/")
    assert response.status_code == 403
    assert client_for(runner_up).post("/api/v1/second-chance-offers/999/accept/").status_code == (
        404
    )
    response = client_for(runner_up).post(accept)
    assert (response.status_code, response.json()["status"]) == (200, "accepted")
    assert Sale.objects.get(pk=response.json()["sale"]).amount_minor == 800
    response = client_for(runner_up).post(f"/api/v1/second-chance-offers/{offer.pk}/decline/")
    assert (response.status_code, _error(response)["code"]) == (409, "offer_closed")


def test_offer_decline_endpoint(settings: Any) -> None:
    settings.AUCTIONS_UNPAID_WINDOW_SECONDS = 0
    auction = auction_make()
    runner_up, winner = user_make(), user_make()
    bid_place(auction_id=auction.pk, bidder=runner_up, max_amount_minor=800, currency="USD")
    bid_place(auction_id=auction.pk, bidder=winner, max_amount_minor=900, currency="USD")
    result = auction_close(auction_id=auction.pk, now=auction.ends_at)
    assert result is not None
    assert result.sale_id is not None
    sale_payment_failed(sale_id=result.sale_id)
    sales_unpaid_cancel_due(now=timezone.now() + timedelta(seconds=1))
    offer = SecondChanceOffer.objects.get()
    response = client_for(runner_up).post(f"/api/v1/second-chance-offers/{offer.pk}/decline/")
    assert (response.status_code, response.json()["status"]) == (200, "declined")


def test_a_retried_bid_with_the_same_idempotency_key_is_placed_once() -> None:
    auction = auction_make()
    bidder = client_for(user_make())
    path = f"/api/v1/auctions/{auction.pk}/bids/place/"
    payload = {"max_amount_minor": 700, "currency": "USD"}
    first = bidder.post(path, payload, format="json", HTTP_IDEMPOTENCY_KEY="bid-1")
    again = bidder.post(path, payload, format="json", HTTP_IDEMPOTENCY_KEY="bid-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Bid.objects.filter(auction=auction).count() == 1


def test_staff_and_seller_see_the_reserve_amount() -> None:
    seller = user_make(seller=True)
    auction = auction_make(seller=seller, reserve_price_minor=4_000)
    for user, expected in [
        (seller, 4_000),
        (user_make(is_staff=True), 4_000),
        (user_make(), None),
    ]:
        body = client_for(user).get(f"/api/v1/auctions/{auction.pk}/").json()
        assert body["reserve_price_minor"] == expected
        assert body["has_reserve"] is True


def test_bid_history_pages_keep_aliases_stable() -> None:
    auction = auction_make(starting_price_minor=100)
    alice, bob = user_make(), user_make()
    for bidder, amount in [(alice, 200), (bob, 300), (alice, 400), (bob, 500), (alice, 600)]:
        bid_place(auction_id=auction.pk, bidder=bidder, max_amount_minor=amount, currency="USD")
    viewer = client_for(user_make())
    path = f"/api/v1/auctions/{auction.pk}/bids/"
    first = viewer.get(path, {"limit": 2}).json()
    assert [(b["sequence"], b["bidder"]) for b in first["results"]] == [
        (5, "Bidder 1"),
        (4, "Bidder 2"),
    ]
    assert first["next_before_sequence"] == 4
    second = viewer.get(path, {"limit": 2, "before_sequence": 4}).json()
    assert [(b["sequence"], b["bidder"]) for b in second["results"]] == [
        (3, "Bidder 1"),
        (2, "Bidder 2"),
    ]
    last = viewer.get(path, {"limit": 2, "before_sequence": 2}).json()
    assert [b["sequence"] for b in last["results"]] == [1]
    assert last["next_before_sequence"] is None
    assert viewer.get(path, {"limit": 0}).status_code == 400


def test_amounts_above_the_cap_are_a_400_and_write_nothing() -> None:
    seller, bidder = user_make(seller=True), user_make()
    auction = auction_make(seller=seller, starting_price_minor=500)
    expected = {"max_amount_minor": ["Ensure this value is less than or equal to 1000000000000."]}
    for amount in (10**19, 10**12 + 1):
        before = (Bid.objects.count(), list(Auction.objects.values_list("version", "price_minor")))
        response = client_for(bidder).post(
            f"/api/v1/auctions/{auction.pk}/bids/place/",
            {"max_amount_minor": amount, "currency": "USD"},
            format="json",
        )
        assert (response.status_code, _error(response)["fields"]) == (400, expected)
        after = (Bid.objects.count(), list(Auction.objects.values_list("version", "price_minor")))
        assert after == before
        response = client_for(seller).post(
            "/api/v1/auctions/create/",
            _terms(starting_price_minor=amount, reserve_price_minor=None, buy_now_price_minor=None),
            format="json",
        )
        assert response.status_code == 400
        assert list(_error(response)["fields"]) == ["starting_price_minor"]
        assert Auction.objects.count() == 1
    response = client_for(bidder).post(
        f"/api/v1/auctions/{auction.pk}/bids/place/",
        {"max_amount_minor": 10**12, "currency": "USD"},
        format="json",
    )
    assert response.status_code == 201, response.json()
