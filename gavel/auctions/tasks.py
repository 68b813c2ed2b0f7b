"""Celery tasks of the auctions app: each calls one service and is idempotent."""

from __future__ import annotations

from celery import shared_task

from gavel.auctions.services.closing import auction_close as _auction_close
from gavel.auctions.services.closing import auction_closes_schedule, auctions_close_due
from gavel.auctions.services.customers import (
    buyer_customers_janitor as _buyer_customers_janitor,
)
from gavel.auctions.services.customers import (
    buyer_customers_refresh as _buyer_customers_refresh,
)
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


@shared_task(name="gavel.auctions.tasks.buyer_customers_refresh", acks_late=True)
def buyer_customers_refresh(customer_ids: list[int]) -> dict[str, int]:
    """Read a batch of imported customers from Stripe; failures are left to the janitor."""
    result = _buyer_customers_refresh(customer_pks=customer_ids)
    return {"refreshed": result.refreshed, "failed": result.failed}


@shared_task(name="gavel.auctions.tasks.buyer_customers_janitor", acks_late=True)
def buyer_customers_janitor() -> dict[str, int]:
    result = _buyer_customers_janitor()
    return {"refreshed": result.refreshed, "failed": result.failed}
