from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from gavel.auctions.models import Sale, SecondChanceOffer
from gavel.auctions.services.bidding import bid_place
from gavel.auctions.services.closing import auction_close
from gavel.auctions.services.sales import (
    sale_mark_paid,
    sale_payment_failed,
    sales_unpaid_cancel_due,
    second_chance_offer_accept,
    second_chance_offer_decline,
)
from gavel.auctions.tests.factories import auction_make, user_make
from gavel.common.errors import ServiceError
from gavel.common.models import OutboxMessage
from gavel.users.models import User

pytestmark = pytest.mark.django_db


def _sold(*maxima: int, reserve: int | None = None) -> tuple[Sale, list[User]]:
    """An auction closed with one bidder per maximum (bids placed lowest first); returns its
    sale and the bidders in the order of ``maxima``."""
    auction = auction_make(reserve_price_minor=reserve)
    bidders = [user_make() for _ in maxima]
    for bidder, amount in sorted(zip(bidders, maxima, strict=True), key=lambda pair: pair[1]):
        bid_place(auction_id=auction.pk, bidder=bidder, max_amount_minor=amount, currency="USD")
    result = auction_close(auction_id=auction.pk, now=auction.ends_at)
    assert result is not None
    assert result.sale_id is not None
    return Sale.objects.get(pk=result.sale_id), bidders


def test_paid_sale_is_final_and_idempotent() -> None:
    sale, _ = _sold(1_000)
    assert sale_mark_paid(sale_id=sale.pk).status == "paid"
    assert sale_mark_paid(sale_id=sale.pk).status == "paid"
    assert sale_payment_failed(sale_id=sale.pk).status == "paid"
    assert list(sale.transitions.values_list("from_status", "to_status")) == [
        ("", "awaiting_payment"),
        ("awaiting_payment", "paid"),
    ]
    with pytest.raises(ServiceError) as raised:
        sale_mark_paid(sale_id=sale.pk + 100)
    assert raised.value.code == "sale_not_found"


def test_failed_payment_fixed_within_the_window_is_paid(settings: Any) -> None:
    settings.AUCTIONS_UNPAID_WINDOW_SECONDS = 3_600
    sale, _ = _sold(1_000)
    now = timezone.now()
    failed = sale_payment_failed(sale_id=sale.pk, reason="authentication_required", now=now)
    assert (failed.status, failed.payment_deadline_at) == (
        "payment_failed",
        now + timedelta(hours=1),
    )
    # A second failure does not move the deadline.
    again = sale_payment_failed(sale_id=sale.pk, now=now + timedelta(minutes=30))
    assert again.payment_deadline_at == now + timedelta(hours=1)
    assert sales_unpaid_cancel_due(now=now + timedelta(minutes=59)).sales_cancelled == 0
    assert sale_mark_paid(sale_id=sale.pk).status == "paid"


def test_unpaid_sale_is_cancelled_and_the_next_bidder_gets_an_offer_at_their_maximum(
    settings: Any,
) -> None:
    settings.AUCTIONS_UNPAID_WINDOW_SECONDS = 3_600
    settings.AUCTIONS_SECOND_CHANCE_WINDOW_SECONDS = 7_200
    settings.AUCTIONS_HANDOFF_TASK = "gavel.payments.tasks.sale_charge"
    sale, (_winner, runner_up, third) = _sold(2_000, 1_500, 1_200)
    assert OutboxMessage.objects.count() == 1
    now = timezone.now()
    sale_payment_failed(sale_id=sale.pk, now=now)
    result = sales_unpaid_cancel_due(now=now + timedelta(hours=1))
    assert (result.sales_cancelled, result.offers_made) == (1, 1)
    sale.refresh_from_db()
    assert sale.status == "cancelled"
    with pytest.raises(ServiceError) as raised:
        sale_mark_paid(sale_id=sale.pk)
    assert raised.value.code == "sale_cancelled"
    offer = SecondChanceOffer.objects.get()
    assert (offer.bidder_id, offer.amount_minor, offer.currency, offer.status) == (
        runner_up.pk,
        1_500,
        "USD",
        "offered",
    )
    assert offer.expires_at == now + timedelta(hours=1) + timedelta(hours=2)
    with pytest.raises(ServiceError) as raised:
        second_chance_offer_accept(offer_id=offer.pk, user=third)
    assert raised.value.status_code == 403
    accepted = second_chance_offer_accept(offer_id=offer.pk, user=runner_up, now=now)
    assert accepted.status == "accepted"
    assert accepted.sale is not None
    assert (accepted.sale.kind, accepted.sale.amount_minor, accepted.sale.buyer_id) == (
        "second_chance",
        1_500,
        runner_up.pk,
    )
    assert second_chance_offer_accept(offer_id=offer.pk, user=runner_up).pk == offer.pk
    assert OutboxMessage.objects.count() == 2
    assert Sale.objects.exclude(status="cancelled").count() == 1


def test_declined_or_expired_offers_pass_to_the_next_eligible_bidder(settings: Any) -> None:
    settings.AUCTIONS_UNPAID_WINDOW_SECONDS = 60
    settings.AUCTIONS_SECOND_CHANCE_WINDOW_SECONDS = 60
    sale, (_winner, second, ineligible, fourth, _below_reserve) = _sold(
        5_000, 4_000, 3_500, 3_000, 900, reserve=1_000
    )
    ineligible.verified_payment_methods.all().delete()
    now = timezone.now()
    sale_payment_failed(sale_id=sale.pk, now=now)
    sales_unpaid_cancel_due(now=now + timedelta(seconds=60))
    first_offer = SecondChanceOffer.objects.get()
    assert first_offer.bidder_id == second.pk
    second_chance_offer_decline(offer_id=first_offer.pk, user=second, now=now)
    assert second_chance_offer_decline(offer_id=first_offer.pk, user=second).status == "declined"
    with pytest.raises(ServiceError) as raised:
        second_chance_offer_accept(offer_id=first_offer.pk, user=second)
    assert raised.value.code == "offer_closed"
    next_offer = SecondChanceOffer.objects.get(status="offered")
    assert (next_offer.bidder_id, next_offer.amount_minor) == (fourth.pk, 3_000)
    result = sales_unpaid_cancel_due(now=now + timedelta(seconds=60))
    assert (result.offers_expired, result.offers_made) == (1, 0)
    next_offer.refresh_from_db()
    assert next_offer.status == "expired"
    with pytest.raises(ServiceError) as raised:
        second_chance_offer_accept(offer_id=next_offer.pk, user=fourth)
    assert raised.value.code == "offer_closed"
    with pytest.raises(ServiceError) as raised:
        second_chance_offer_decline(offer_id=next_offer.pk, user=fourth)
    assert raised.value.code == "offer_closed"
    # Nobody left at or above the reserve: no further offer.
    assert SecondChanceOffer.objects.filter(status="offered").count() == 0
    assert list(next_offer.transitions.values_list("to_status", flat=True)) == [
        "offered",
        "expired",
    ]


def test_accepting_needs_a_verified_payment_method(settings: Any) -> None:
    settings.AUCTIONS_UNPAID_WINDOW_SECONDS = 0
    sale, (_, runner_up) = _sold(2_000, 1_500)
    sale_payment_failed(sale_id=sale.pk)
    sales_unpaid_cancel_due(now=timezone.now() + timedelta(seconds=1))
    offer = SecondChanceOffer.objects.get()
    runner_up.verified_payment_methods.all().delete()
    with pytest.raises(ServiceError) as raised:
        second_chance_offer_accept(offer_id=offer.pk, user=runner_up)
    assert raised.value.code == "payment_method_required"
    offer.refresh_from_db()
    assert offer.status == "offered"
