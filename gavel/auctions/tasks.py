"""Celery tasks of the auctions app: each calls one service and is idempotent."""

from __future__ import annotations

from celery import shared_task

from gavel.auctions.services.closing import auction_close as _auction_close
from gavel.auctions.services.closing import auction_closes_schedule, auctions_close_due
from gavel.auctions.services.sales import sales_unpaid_cancel_due


@shared_task(name="gavel.auctions.tasks.auction_close", acks_late=True)
def auction_close(auction_id: int) -> bool:
    result = _auction_close(auction_id=auction_id)
    return bool(result and result.closed_now)


@shared_task(name="gavel.auctions.tasks.auctions_close_scan", acks_late=True)
def auctions_close_scan() -> dict[str, int]:
    closed = auctions_close_due()
    scheduled = auction_closes_schedule()
    return {"closed": closed, "scheduled": scheduled}


@shared_task(name="gavel.auctions.tasks.sales_deadlines_scan", acks_late=True)
def sales_deadlines_scan() -> dict[str, int]:
    result = sales_unpaid_cancel_due()
    return {
        "sales_cancelled": result.sales_cancelled,
        "offers_made": result.offers_made,
        "offers_expired": result.offers_expired,
    }
