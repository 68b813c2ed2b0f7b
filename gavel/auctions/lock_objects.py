"""Row locks of the auctions app, in one place. Several rows lock in primary-key order."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from gavel.auctions.models import Auction, PaymentMethodSetup, Sale, SecondChanceOffer


def auction_lock(*, auction_id: int) -> QuerySet[Auction]:
    """The auction row, locked: every bid, edit and close on one auction goes through it."""
    return Auction.objects.select_for_update().filter(pk=auction_id)


def auctions_due_lock(*, now: datetime, limit: int) -> QuerySet[Auction]:
    """Active auctions past their end, locked without waiting on ones being bid on right now."""
    return (
        Auction.objects.select_for_update(skip_locked=True)
        .filter(status=Auction.Status.ACTIVE, ends_at__lte=now)
        .order_by("pk")[:limit]
    )


def sale_lock(*, sale_id: int) -> QuerySet[Sale]:
    return Sale.objects.select_for_update().filter(pk=sale_id)


def offer_lock(*, offer_id: int) -> QuerySet[SecondChanceOffer]:
    return SecondChanceOffer.objects.select_for_update().filter(pk=offer_id)


def setup_lock(*, setup_id: int) -> QuerySet[PaymentMethodSetup]:
    return PaymentMethodSetup.objects.select_for_update().filter(pk=setup_id)
