"""Demo chapter: two sellers list, buyers save cards, a proxy-bidding war with a soft-close
extension, and the close hands both lots to payments."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from gavel.demo.chapters_payments import usd

if TYPE_CHECKING:
    from gavel.demo.story import StoryContext


def _second_seller(context: StoryContext) -> str:
    """Bo signs up and onboards like Ada did."""
    context.sign_up("bo")
    started = context.api("POST", "/api/v1/connect/onboarding/", as_user="bo", expect=201)
    context.sandbox.follow_account_link(started["onboarding_link"]["url"])
    account: dict[str, Any] = context.api("POST", "/api/v1/connect/account/refresh/", as_user="bo")
    return str(account["stripe_account_id"])


def _save_card(context: StoryContext, name: str) -> dict[str, Any]:
    """The app's SetupIntent flow: Stripe's SDK confirms the card on the phone; Gavel only ever
    sees the PaymentMethod id, brand and last four digits."""
    setup = context.api("POST", "/api/v1/payment-methods/setup/", as_user=name, expect=201)
    context.sandbox.client(settings.STRIPE_SECRET_KEY).v1.setup_intents.confirm(
        setup["setup_intent_id"], params={"payment_method": "pm_card_bypassPending"}
    )
    done = context.api(
        "POST", f"/api/v1/payment-methods/setup/{setup['id']}/refresh/", as_user=name
    )
    method: dict[str, Any] = done["payment_method"] or {}
    return method


def _list(
    context: StoryContext, seller: str, *, title: str, starting: int, reserve: int | None
) -> dict[str, Any]:
    now = timezone.now()
    body: dict[str, Any] = {
        "title": title,
        "description": f"{title}, from {seller.title()}'s collection.",
        "category": "antiques",
        "image_urls": [f"https://images.gavel.example/{title.lower().replace(' ', '-')}.jpg"],
        "currency": "USD",
        "starts_at": now.isoformat(),
        "ends_at": (now + timedelta(minutes=10)).isoformat(),
        "starting_price_minor": starting,
        "soft_close_seconds": 120,
        "soft_close_style": "extend_to",
    }
    if reserve is not None:
        body["reserve_price_minor"] = reserve
    listed: dict[str, Any] = context.api(
        "POST", "/api/v1/auctions/create/", as_user=seller, body=body, expect=201
    )
    return listed


def _bid(context: StoryContext, name: str, auction_id: int, max_minor: int) -> dict[str, Any]:
    placed: dict[str, Any] = context.api(
        "POST",
        f"/api/v1/auctions/{auction_id}/bids/place/",
        as_user=name,
        body={"max_amount_minor": max_minor, "currency": "USD"},
        expect=201,
    )
    return placed


def chapter_auctions(context: StoryContext) -> None:
    from gavel.auctions.models import Auction, Sale
    from gavel.auctions.services.closing import auction_close
    from gavel.demo.chapters_payments import money_webhooks_register

    narrator = context.narrator
    narrator.chapter("Two auctions: a proxy-bidding war, a soft close, the hammer falls")
    money_webhooks_register(context)
    acct_bo = _second_seller(context)
    narrator.step(f"Bo onboards as a second seller ({acct_bo}), next to Ada.")
    context.cast["bo_stripe_account"] = acct_bo

    context.sign_up("lin")
    context.sign_up("mo")
    for name in ("sam", "lin"):
        method = _save_card(context, name)
        narrator.step(
            f"{name.title()} saves a card for bidding ({method.get('brand')} •••• "
            f"{method.get('last4')}), confirmed with Stripe off-session; no card number ever "
            "reaches Gavel."
        )
    context.cast["buyer_cards_saved"] = True

    telescope = _list(context, "ada", title="Brass telescope", starting=10_000, reserve=40_000)
    chest = _list(context, "bo", title="Oak chest", starting=5_000, reserve=None)
    narrator.step(
        f"Ada lists a brass telescope (opening bid {usd(10_000)}, hidden reserve); Bo lists an "
        f"oak chest (opening bid {usd(5_000)}, no reserve). Both close in ten minutes, with a "
        "two-minute soft close."
    )

    refused = context.api(
        "POST",
        f"/api/v1/auctions/{telescope['id']}/bids/place/",
        as_user="mo",
        body={"max_amount_minor": 20_000, "currency": "USD"},
        expect=403,
    )
    narrator.step(f"Mo has no card on file; his bid is refused: “{refused['error']['message']}”")

    first = _bid(context, "sam", telescope["id"], 30_000)
    narrator.step(
        f"Sam bids up to {usd(30_000)} on the telescope; proxy bidding shows only "
        f"{usd(first['price_minor'])}, and the reserve is not met yet."
    )
    second = _bid(context, "lin", telescope["id"], 47_500)
    narrator.step(
        f"Lin bids up to {usd(47_500)}: a maximum above the hidden reserve lifts the price "
        f"straight to it ({usd(second['price_minor'])}, reserve met, Lin leads)."
    )
    # The demo moves both auctions to their last minute rather than wait ten minutes.
    with transaction.atomic():
        Auction.objects.filter(pk__in=[telescope["id"], chest["id"]]).update(
            ends_at=timezone.now() + timedelta(seconds=60)
        )
    third = _bid(context, "sam", telescope["id"], 52_000)
    narrator.step(
        f"The demo skips to the last minute. Sam raises his maximum to {usd(52_000)}: he leads at "
        f"{usd(third['price_minor'])} (Lin's maximum plus one increment), and the soft close "
        f"moves the end to two minutes after his bid (extended: {third['extended']})."
    )

    _bid(context, "lin", chest["id"], 12_250)
    chest_bid = _bid(context, "sam", chest["id"], 15_000)
    narrator.step(
        f"On the oak chest Lin bids up to {usd(12_250)} and Sam up to {usd(15_000)}: Sam "
        f"leads at {usd(chest_bid['price_minor'])}."
    )
    history = context.api("GET", f"/api/v1/auctions/{telescope['id']}/bids/", as_user="mo")
    bidders = sorted({row["bidder"] for row in history["results"]})
    narrator.step(
        f"Anyone can read the telescope's bid history ({len(history['results'])} bids); bidders "
        f"are masked ({', '.join(bidders)})."
    )

    closing_at = max(
        Auction.objects.get(pk=telescope["id"]).ends_at, Auction.objects.get(pk=chest["id"]).ends_at
    )
    with transaction.atomic():
        results = [
            auction_close(auction_id=auction_id, now=closing_at)
            for auction_id in (telescope["id"], chest["id"])
        ]
    sale_ids = [result.sale_id for result in results if result and result.sale_id]
    sales = list(Sale.objects.filter(pk__in=sale_ids).order_by("pk"))
    narrator.step(
        "The close scanner runs at the true (extended) end time (the demo fast-forwards to it): "
        + "; ".join(
            f"{sale.auction.title} sold to {sale.buyer.display_name} at {usd(sale.amount_minor)}"
            for sale in sales
        )
        + ". The sales go to payments through the outbox, in the same transaction."
    )
    context.cast["sale_ids"] = sale_ids
