"""Holds: manual-capture authorizations for high-value bidding, captured at close or
released, renewed before Stripe's 7-day expiry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from gavel.auctions.models import Auction
from gavel.auctions.policies import bidder_hold_satisfied
from gavel.common.errors import ServiceError
from gavel.payments.models import Hold, Order, PaymentAttempt
from gavel.payments.services.charging import order_charge
from gavel.payments.services.holds import hold_place, hold_release, holds_maintain
from gavel.payments.services.orders import order_for_sale
from gavel.payments.tests.factories import (
    auction_make,
    card_save,
    sale_make,
    seller_make,
    user_make,
)
from gavel.payments.tests.helpers import assert_books_clean


def _bidder(sandbox: Any, card: str = "pm_card_bypassPending") -> Any:
    user = user_make()
    card_save(sandbox, user, card)
    return user


def test_hold_authorizes_and_is_captured_for_the_winner(sandbox: Any, db: None) -> None:
    seller, _ = seller_make(sandbox)
    bidder = _bidder(sandbox)
    auction = auction_make(
        seller, hold_policy=Auction.HoldPolicy.AUTHORIZATION, status=Auction.Status.ACTIVE
    )
    assert not bidder_hold_satisfied(auction=auction, user=bidder, amount_minor=20_000)
    hold = hold_place(auction_id=auction.pk, user=bidder, amount_minor=20_000)
    assert (hold.status, hold.amount_minor) == ("authorized", 20_000)
    assert hold.expires_at is not None
    assert bidder_hold_satisfied(auction=auction, user=bidder, amount_minor=20_000)
    assert not bidder_hold_satisfied(auction=auction, user=bidder, amount_minor=20_001)
    assert hold_place(auction_id=auction.pk, user=bidder, amount_minor=15_000).pk == hold.pk
    # The auction closes at 15000: the hold pays the order's 15750, the rest is released.
    Auction.objects.filter(pk=auction.pk).update(status=Auction.Status.SOLD)
    sale = sale_make(seller, bidder, 15_000, auction=auction)
    order = order_charge(order_id=order_for_sale(sale_id=sale.pk).pk)
    assert order.status == Order.Status.CAPTURED
    assert order.captured_minor == 15_750
    hold.refresh_from_db()
    assert (hold.status, hold.captured_minor, hold.order_id) == ("captured", 15_750, order.pk)
    assert PaymentAttempt.objects.count() == 1
    assert_books_clean()


def test_deposit_hold_released_for_losers_and_refused_without_policy(
    sandbox: Any, db: None, settings: Any
) -> None:
    seller, _ = seller_make(sandbox)
    bidder = _bidder(sandbox)
    auction = auction_make(
        seller, hold_policy=Auction.HoldPolicy.DEPOSIT, status=Auction.Status.ACTIVE
    )
    hold = hold_place(auction_id=auction.pk, user=bidder, amount_minor=50_000)
    assert hold.amount_minor == 5_000  # 10 % deposit
    Auction.objects.filter(pk=auction.pk).update(status=Auction.Status.UNSOLD)
    assert holds_maintain() == {"released": 1, "renewed": 0}
    hold.refresh_from_db()
    assert hold.status == Hold.Status.RELEASED
    assert hold_release(hold_id=hold.pk).status == Hold.Status.RELEASED
    plain = auction_make(seller, status=Auction.Status.ACTIVE)
    with pytest.raises(ServiceError):
        hold_place(auction_id=plain.pk, user=bidder, amount_minor=1_000)
    with pytest.raises(ServiceError):
        hold_place(auction_id=auction.pk, user=bidder, amount_minor=0)


def test_hold_renewed_before_expiry_and_lapses_when_renewal_fails(
    sandbox: Any, db: None, settings: Any
) -> None:
    seller, _ = seller_make(sandbox)
    bidder = _bidder(sandbox)
    auction = auction_make(
        seller, hold_policy=Auction.HoldPolicy.AUTHORIZATION, status=Auction.Status.ACTIVE
    )
    hold = hold_place(auction_id=auction.pk, user=bidder, amount_minor=20_000)
    Hold.objects.filter(pk=hold.pk).update(expires_at=timezone.now() + timedelta(hours=2))
    assert holds_maintain() == {"released": 0, "renewed": 1}
    hold.refresh_from_db()
    assert hold.status == Hold.Status.RELEASED
    assert hold.replaced_by is not None
    assert hold.replaced_by.status == Hold.Status.AUTHORIZED
    assert bidder_hold_satisfied(auction=auction, user=bidder, amount_minor=20_000)

    # A card that now needs 3-D Secure cannot renew off-session: the hold lapses.
    other = user_make()
    card_save(sandbox, other, "pm_card_bypassPending")
    lapsing = hold_place(auction_id=auction.pk, user=other, amount_minor=20_000)
    card_save(sandbox, other, "pm_card_authenticationRequired")
    Hold.objects.filter(pk=lapsing.pk).update(expires_at=timezone.now() + timedelta(hours=1))
    assert holds_maintain()["renewed"] == 0
    lapsing.refresh_from_db()
    assert lapsing.status == Hold.Status.AUTHORIZED
    assert lapsing.replaced_by is not None
    assert lapsing.replaced_by.status == Hold.Status.REQUIRES_ACTION
    # Stripe cancels it after 7 days: the hold is expired and no longer satisfies the policy.
    sandbox.advance(8 * 86_400)
    from gavel.payments.tests.factories import events_deliver

    events_deliver(sandbox, "payment_intent.canceled")
    lapsing.refresh_from_db()
    assert lapsing.status == Hold.Status.EXPIRED
    assert not bidder_hold_satisfied(auction=auction, user=other, amount_minor=20_000)
