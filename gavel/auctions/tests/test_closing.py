from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from gavel.auctions import tasks
from gavel.auctions.models import Auction, Sale
from gavel.auctions.services.bidding import bid_place
from gavel.auctions.services.closing import (
    auction_close,
    auction_closes_schedule,
    auctions_close_due,
)
from gavel.auctions.tests.factories import auction_make, user_make
from gavel.common.models import OutboxMessage

pytestmark = pytest.mark.django_db


def test_close_with_winner_makes_one_sale_and_is_idempotent(settings: Any) -> None:
    settings.AUCTIONS_HANDOFF_TASK = ""
    auction = auction_make(reserve_price_minor=500)
    alice, bob = user_make(), user_make()
    bid_place(auction_id=auction.pk, bidder=alice, max_amount_minor=900, currency="USD")
    bid_place(auction_id=auction.pk, bidder=bob, max_amount_minor=700, currency="USD")
    early = auction_close(auction_id=auction.pk, now=auction.ends_at - timedelta(seconds=1))
    assert early is not None
    assert not early.closed_now
    assert early.status == "active"
    result = auction_close(auction_id=auction.pk, now=auction.ends_at)
    assert result is not None
    assert result.closed_now
    assert (result.status, result.outcome) == ("sold", "sold")
    sale = Sale.objects.get()
    assert result.sale_id == sale.pk
    assert (sale.buyer_id, sale.seller_id, sale.amount_minor, sale.currency, sale.kind) == (
        alice.pk,
        auction.seller_id,
        750,
        "USD",
        "winner",
    )
    again = auction_close(auction_id=auction.pk, now=auction.ends_at + timedelta(hours=1))
    assert again is not None
    assert (again.closed_now, again.sale_id) == (False, sale.pk)
    assert Sale.objects.count() == 1
    auction.refresh_from_db()
    assert (auction.winner_id, auction.hammer_price_minor) == (alice.pk, 750)
    assert list(auction.transitions.values_list("to_status", flat=True)) == ["active", "sold"]
    # No hand-off task configured: the sale is recorded, nothing is enqueued.
    assert OutboxMessage.objects.count() == 0
    assert auction_close(auction_id=auction.pk + 999) is None


def test_reserve_not_met_and_no_bids_make_no_sale() -> None:
    reserve = auction_make(reserve_price_minor=5_000)
    bid_place(auction_id=reserve.pk, bidder=user_make(), max_amount_minor=4_999, currency="USD")
    empty = auction_make()
    first = auction_close(auction_id=reserve.pk, now=reserve.ends_at)
    second = auction_close(auction_id=empty.pk, now=empty.ends_at)
    assert first is not None
    assert (first.status, first.outcome) == ("unsold", "reserve_not_met")
    assert second is not None
    assert (second.status, second.outcome) == ("unsold", "no_bids")
    assert Sale.objects.count() == 0


def test_handoff_is_enqueued_when_payments_is_configured(settings: Any) -> None:
    settings.AUCTIONS_HANDOFF_TASK = "gavel.payments.tasks.sale_charge"
    auction = auction_make()
    bid_place(auction_id=auction.pk, bidder=user_make(), max_amount_minor=900, currency="USD")
    result = auction_close(auction_id=auction.pk, now=auction.ends_at)
    assert result is not None
    message = OutboxMessage.objects.get()
    assert (message.task_name, message.kwargs, message.queue) == (
        "gavel.payments.tasks.sale_charge",
        {"sale_id": result.sale_id},
        "payments",
    )


def test_extension_moves_the_true_end() -> None:
    now = timezone.now()
    auction = auction_make(now=now, soft_close_seconds=300, soft_close_style="extend_by")
    bid_place(
        auction_id=auction.pk,
        bidder=user_make(),
        max_amount_minor=100,
        currency="USD",
        now=auction.ends_at - timedelta(seconds=10),
    )
    old_end = auction.ends_at
    result = auction_close(auction_id=auction.pk, now=old_end)
    assert result is not None
    assert not result.closed_now
    result = auction_close(auction_id=auction.pk, now=old_end + timedelta(seconds=300))
    assert result is not None
    assert result.closed_now
    assert result.outcome == "sold"


def test_scanner_closes_every_overdue_auction_in_batches() -> None:
    now = timezone.now()
    due = [auction_make(now=now - timedelta(days=8)) for _ in range(3)]
    later = auction_make(now=now)
    assert auctions_close_due(now=now, limit=2) == 3
    assert all(
        status == "unsold"
        for status in Auction.objects.filter(pk__in=[a.pk for a in due]).values_list(
            "status", flat=True
        )
    )
    later.refresh_from_db()
    assert later.status == "active"
    assert auctions_close_due(now=now) == 0


def test_scheduler_enqueues_exact_time_tasks_only_within_the_visibility_timeout(
    settings: Any,
) -> None:
    settings.CELERY_VISIBILITY_TIMEOUT_SECONDS = 300
    settings.AUCTIONS_CLOSE_ETA_MARGIN_SECONDS = 60
    now = timezone.now()
    soon = auction_make(now=now - timedelta(days=7) + timedelta(seconds=100))
    far = auction_make(now=now - timedelta(days=7) + timedelta(seconds=400))
    assert auction_closes_schedule(now=now) == 1
    soon.refresh_from_db()
    far.refresh_from_db()
    message = OutboxMessage.objects.get()
    assert (message.task_name, message.kwargs, message.queue, message.eta) == (
        "gavel.auctions.tasks.auction_close",
        {"auction_id": soon.pk},
        "auctions",
        soon.ends_at,
    )
    assert soon.close_scheduled_for == soon.ends_at
    assert far.close_scheduled_for is None
    # Already scheduled for this end: nothing new. A moved end is scheduled again.
    assert auction_closes_schedule(now=now) == 0
    Auction.objects.filter(pk=soon.pk).update(ends_at=soon.ends_at + timedelta(seconds=30))
    assert auction_closes_schedule(now=now) == 1
    assert OutboxMessage.objects.count() == 2


def test_tasks_call_their_services() -> None:
    auction = auction_make(now=timezone.now() - timedelta(days=8))
    assert tasks.auction_close(auction.pk) is True
    assert tasks.auction_close(auction.pk) is False
    assert tasks.auctions_close_scan() == {"closed": 0, "scheduled": 0}
    assert tasks.sales_deadlines_scan() == {
        "sales_cancelled": 0,
        "offers_made": 0,
        "offers_expired": 0,
    }
