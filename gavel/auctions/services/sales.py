"""Sales handed to payments, the unpaid-item window and second-chance offers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from gavel.auctions import metrics
from gavel.auctions.lock_objects import auction_lock, offer_lock, sale_lock
from gavel.auctions.models import Auction, Sale, SecondChanceOffer
from gavel.auctions.selectors import (
    bidder_has_verified_payment_method,
    second_chance_candidates,
)
from gavel.auctions.states import history_record, status_transition
from gavel.common.errors import ConflictError, NotFoundError, ServiceError
from gavel.common.outbox import outbox_enqueue
from gavel.users.models import User

SaleStatus = Sale.Status
OfferStatus = SecondChanceOffer.Status


def sale_create(*, auction: Auction, buyer: User | int, amount_minor: int, kind: str) -> Sale:
    """Record a sale and hand it to payments (inside the caller's transaction)."""
    buyer_id = buyer if isinstance(buyer, int) else buyer.pk
    sale = Sale.objects.create(
        auction=auction,
        buyer_id=buyer_id,
        seller_id=auction.seller_id,
        kind=kind,
        amount_minor=amount_minor,
        currency=auction.currency,
    )
    history_record(instance=sale, from_status="", to_status=sale.status, reason=f"sale:{kind}")
    sale_handoff(sale_id=sale.pk)
    return sale


def sale_handoff(*, sale_id: int) -> bool:
    """Enqueue the payments task for a sale, when one is configured (AUCTIONS_HANDOFF_TASK)."""
    task_name: str = settings.AUCTIONS_HANDOFF_TASK
    if not task_name:
        return False
    outbox_enqueue(task_name=task_name, kwargs={"sale_id": sale_id}, queue="payments")
    return True


def _sale_locked(sale_id: int) -> Sale:
    sale = sale_lock(sale_id=sale_id).first()
    if sale is None:
        raise NotFoundError("No such sale.", code="sale_not_found")
    return sale


def sale_mark_paid(*, sale_id: int) -> Sale:
    """Payments collected the money. Idempotent; a cancelled sale refuses (409)."""
    with transaction.atomic():
        sale = _sale_locked(sale_id)
        if sale.status == SaleStatus.PAID:
            return sale
        if sale.status == SaleStatus.CANCELLED:
            raise ConflictError(
                "This sale was cancelled for non-payment; refund the buyer.",
                code="sale_cancelled",
            )
        status_transition(instance=sale, to_status=SaleStatus.PAID, reason="payment collected")
    metrics.SALES.labels(to_status=SaleStatus.PAID).inc()
    return sale


def sale_payment_failed(*, sale_id: int, reason: str = "", now: datetime | None = None) -> Sale:
    """Payments could not collect (declined, or 3-D Secure pending). The first failure opens
    the unpaid window; later failures within it change nothing. Idempotent."""
    now = now or timezone.now()
    with transaction.atomic():
        sale = _sale_locked(sale_id)
        if sale.status in (SaleStatus.PAYMENT_FAILED, SaleStatus.PAID, SaleStatus.CANCELLED):
            return sale
        sale.payment_deadline_at = now + timedelta(seconds=settings.AUCTIONS_UNPAID_WINDOW_SECONDS)
        status_transition(
            instance=sale,
            to_status=SaleStatus.PAYMENT_FAILED,
            reason=reason or "payment failed",
            fields=["payment_deadline_at"],
        )
    metrics.SALES.labels(to_status=SaleStatus.PAYMENT_FAILED).inc()
    return sale


@dataclass(frozen=True, slots=True)
class UnpaidSweepResult:
    sales_cancelled: int
    offers_made: int
    offers_expired: int


def sales_unpaid_cancel_due(*, now: datetime | None = None, limit: int = 200) -> UnpaidSweepResult:
    """Cancel sales whose unpaid window has passed and offer the item to the next bidder;
    expire second-chance offers past their deadline and offer to the one after."""
    now = now or timezone.now()
    cancelled = offered = expired = 0
    due_sales = list(
        Sale.objects.filter(status=SaleStatus.PAYMENT_FAILED, payment_deadline_at__lte=now)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    for sale_id in due_sales:
        with transaction.atomic():
            sale = _sale_locked(sale_id)
            if sale.status != SaleStatus.PAYMENT_FAILED or sale.payment_deadline_at is None:
                continue
            if sale.payment_deadline_at > now:
                continue
            status_transition(
                instance=sale, to_status=SaleStatus.CANCELLED, reason="unpaid after window"
            )
            cancelled += 1
            if second_chance_offer_next(auction_id=sale.auction_id, cancelled_sale=sale, now=now):
                offered += 1
        metrics.SALES.labels(to_status=SaleStatus.CANCELLED).inc()
    due_offers = list(
        SecondChanceOffer.objects.filter(status=OfferStatus.OFFERED, expires_at__lte=now)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    for offer_id in due_offers:
        with transaction.atomic():
            offer = offer_lock(offer_id=offer_id).get()
            if offer.status != OfferStatus.OFFERED or offer.expires_at > now:
                continue
            status_transition(instance=offer, to_status=OfferStatus.EXPIRED, reason="deadline")
            expired += 1
            if second_chance_offer_next(
                auction_id=offer.auction_id, cancelled_sale=offer.cancelled_sale, now=now
            ):
                offered += 1
        metrics.OFFERS.labels(status=OfferStatus.EXPIRED).inc()
    return UnpaidSweepResult(cancelled, offered, expired)


def second_chance_offer_next(
    *, auction_id: int, cancelled_sale: Sale, now: datetime
) -> SecondChanceOffer | None:
    """Offer the item to the best remaining bidder at their own maximum (in the caller's
    transaction). Bidders who already won, bought or had an offer are skipped, and so are
    those without a verified payment method now."""
    auction = auction_lock(auction_id=auction_id).get()
    excluded = set(Sale.objects.filter(auction=auction).values_list("buyer_id", flat=True))
    excluded |= set(
        SecondChanceOffer.objects.filter(auction=auction).values_list("bidder_id", flat=True)
    )
    for bid in second_chance_candidates(auction=auction, excluded_user_ids=excluded):
        if not bidder_has_verified_payment_method(user=bid.bidder):
            continue
        offer = SecondChanceOffer.objects.create(
            auction=auction,
            bidder_id=bid.bidder_id,
            cancelled_sale=cancelled_sale,
            amount_minor=bid.max_amount_minor,
            currency=auction.currency,
            expires_at=now + timedelta(seconds=settings.AUCTIONS_SECOND_CHANCE_WINDOW_SECONDS),
        )
        history_record(instance=offer, from_status="", to_status=offer.status, reason="offered")
        metrics.OFFERS.labels(status=OfferStatus.OFFERED).inc()
        return offer
    return None


def _offer_for_bidder(*, offer_id: int, user: User) -> SecondChanceOffer:
    offer = offer_lock(offer_id=offer_id).first()
    if offer is None:
        raise NotFoundError("No such offer.", code="offer_not_found")
    if offer.bidder_id != user.pk:
        raise ServiceError("This offer is not yours.", code="not_your_offer", status_code=403)
    return offer


def second_chance_offer_accept(
    *, offer_id: int, user: User, now: datetime | None = None
) -> SecondChanceOffer:
    """The bidder buys at their own maximum: a new sale, handed to payments."""
    now = now or timezone.now()
    if not bidder_has_verified_payment_method(user=user):
        raise ServiceError(
            "Add a verified payment method first.",
            code="payment_method_required",
            status_code=403,
        )
    with transaction.atomic():
        offer = _offer_for_bidder(offer_id=offer_id, user=user)
        if offer.status == OfferStatus.ACCEPTED:
            return offer
        if offer.status != OfferStatus.OFFERED or offer.expires_at <= now:
            raise ConflictError("This offer is no longer open.", code="offer_closed")
        auction = auction_lock(auction_id=offer.auction_id).get()
        offer.sale = sale_create(
            auction=auction, buyer=user, amount_minor=offer.amount_minor, kind="second_chance"
        )
        status_transition(
            instance=offer, to_status=OfferStatus.ACCEPTED, reason="accepted", fields=["sale"]
        )
    metrics.OFFERS.labels(status=OfferStatus.ACCEPTED).inc()
    return offer


def second_chance_offer_decline(
    *, offer_id: int, user: User, now: datetime | None = None
) -> SecondChanceOffer:
    """The bidder declines; the next bidder gets an offer."""
    now = now or timezone.now()
    with transaction.atomic():
        offer = _offer_for_bidder(offer_id=offer_id, user=user)
        if offer.status == OfferStatus.DECLINED:
            return offer
        if offer.status != OfferStatus.OFFERED:
            raise ConflictError("This offer is no longer open.", code="offer_closed")
        status_transition(instance=offer, to_status=OfferStatus.DECLINED, reason="declined")
        second_chance_offer_next(
            auction_id=offer.auction_id, cancelled_sale=offer.cancelled_sale, now=now
        )
    metrics.OFFERS.labels(status=OfferStatus.DECLINED).inc()
    return offer
