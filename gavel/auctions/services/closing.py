"""Closing auctions at their true end (extensions included). Idempotent.

The beat scanner (``auctions_close_due`` + ``auction_closes_schedule``) is the source of
truth. For auctions ending within the broker's visibility timeout it also enqueues (through the
outbox, with an ETA) one exact-time close task per end time, so an auction closes within a
second of its end rather than within a scan interval. A task that arrives early (the end
moved) or twice does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from gavel.auctions import metrics
from gavel.auctions.live import auction_event_publish_on_commit
from gavel.auctions.lock_objects import auction_lock, auctions_due_lock
from gavel.auctions.models import Auction, Sale
from gavel.auctions.selectors import (
    auction_public_state,
    auction_reserve_met,
    close_eta_horizon_seconds,
)
from gavel.auctions.services.sales import sale_create
from gavel.auctions.states import status_transition
from gavel.common.outbox import outbox_enqueue

CLOSE_TASK = "gavel.auctions.tasks.auction_close"


@dataclass(frozen=True, slots=True)
class AuctionCloseResult:
    auction_id: int
    closed_now: bool
    status: str
    outcome: str
    sale_id: int | None


def _close_locked(auction: Auction, *, now: datetime) -> AuctionCloseResult:
    if auction.status != Auction.Status.ACTIVE or now < auction.ends_at:
        live_sale = auction.sales.exclude(status=Sale.Status.CANCELLED).first()
        return AuctionCloseResult(
            auction.pk,
            False,
            auction.status,
            auction.outcome,
            live_sale.pk if live_sale else None,
        )
    auction.closed_at = now
    auction.version += 1
    sale: Sale | None = None
    if auction.leader_id is not None and auction_reserve_met(auction):
        auction.outcome = Auction.Outcome.SOLD
        auction.winner_id = auction.leader_id
        auction.hammer_price_minor = auction.price_minor
        to_status = Auction.Status.SOLD
    else:
        auction.outcome = (
            Auction.Outcome.NO_BIDS
            if auction.leader_id is None
            else Auction.Outcome.RESERVE_NOT_MET
        )
        to_status = Auction.Status.UNSOLD
    status_transition(
        instance=auction,
        to_status=to_status,
        reason=f"closed: {auction.outcome}",
        fields=["closed_at", "version", "outcome", "winner", "hammer_price_minor"],
    )
    if to_status == Auction.Status.SOLD:
        assert auction.leader_id is not None
        sale = sale_create(
            auction=auction,
            buyer=auction.leader_id,
            amount_minor=auction.price_minor,
            kind=Sale.Kind.WINNER,
        )
    auction_event_publish_on_commit(
        auction_id=auction.pk,
        event_type="closed",
        data=auction_public_state(auction).as_event(auction.pk),
    )
    metrics.CLOSES.labels(outcome=auction.outcome).inc()
    return AuctionCloseResult(
        auction.pk, True, auction.status, auction.outcome, sale.pk if sale else None
    )


def auction_close(*, auction_id: int, now: datetime | None = None) -> AuctionCloseResult | None:
    """Close one auction if its end has passed; None when it does not exist."""
    with transaction.atomic():
        auction = auction_lock(auction_id=auction_id).first()
        if auction is None:
            return None
        return _close_locked(auction, now=now or timezone.now())


def auctions_close_due(*, now: datetime | None = None, limit: int | None = None) -> int:
    """Close every active auction past its end, in batches; returns how many closed."""
    batch = limit or settings.AUCTIONS_CLOSE_BATCH_SIZE
    closed = 0
    while True:
        with transaction.atomic():
            current = now or timezone.now()
            due = list(auctions_due_lock(now=current, limit=batch))
            for auction in due:
                closed += int(_close_locked(auction, now=current).closed_now)
        if len(due) < batch:
            return closed


def auction_closes_schedule(*, now: datetime | None = None) -> int:
    """Enqueue an exact-time close task for each auction ending within the ETA horizon whose
    current end has no task yet. Returns how many were enqueued.

    The horizon stays inside the broker's visibility timeout: with Redis, a message held longer
    is delivered again and again. Auctions ending later are the scanner's until they come
    within it.
    """
    now = now or timezone.now()
    horizon = now + timedelta(seconds=close_eta_horizon_seconds())
    enqueued = 0
    with transaction.atomic():
        upcoming = list(
            Auction.objects.select_for_update(skip_locked=True)
            .filter(status=Auction.Status.ACTIVE, ends_at__gt=now, ends_at__lte=horizon)
            .exclude(close_scheduled_for=F("ends_at"))
            .order_by("pk")
        )
        for auction in upcoming:
            Auction.objects.filter(pk=auction.pk).update(close_scheduled_for=auction.ends_at)
            outbox_enqueue(
                task_name=CLOSE_TASK,
                kwargs={"auction_id": auction.pk},
                queue=settings.AUCTIONS_TASK_QUEUE,
                eta=auction.ends_at,
            )
            enqueued += 1
    return enqueued
