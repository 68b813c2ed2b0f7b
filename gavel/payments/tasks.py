"""Celery tasks of the payments app: each calls one service, with ids only."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from gavel.gateway.errors import GatewayRetryableError


@shared_task(
    name="gavel.payments.tasks.sale_charge",
    autoretry_for=(GatewayRetryableError,),
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=8,
)
def sale_charge(sale_id: int) -> int:
    """The auctions handoff: put the sale in a checkout and charge it."""
    from gavel.payments.models import PaymentAttempt
    from gavel.payments.services.charging import order_charge
    from gavel.payments.services.orders import order_for_sale

    order = order_charge(order_id=order_for_sale(sale_id=sale_id).pk)
    if PaymentAttempt.objects.filter(order=order, status=PaymentAttempt.Status.CREATING).exists():
        # Stripe asked us to slow down (429) or the lock was busy: retry with backoff, same key.
        raise GatewayRetryableError("payment not sent yet; retrying")
    return order.pk


@shared_task(name="gavel.payments.tasks.transfers_release_due")
def transfers_release_due() -> int:
    from gavel.payments.services.transfers import orders_release_due

    return orders_release_due()


@shared_task(
    name="gavel.payments.tasks.reversal_execute",
    autoretry_for=(GatewayRetryableError,),
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=8,
)
def reversal_execute(reversal_id: int) -> str:
    from gavel.payments.services.transfers import reversal_execute as service

    return service(reversal_id=reversal_id).status


@shared_task(
    name="gavel.payments.tasks.hold_release",
    autoretry_for=(GatewayRetryableError,),
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=8,
)
def hold_release(hold_id: int) -> str:
    from gavel.payments.services.holds import hold_release as service

    return service(hold_id=hold_id).status


@shared_task(name="gavel.payments.tasks.holds_maintain")
def holds_maintain() -> dict[str, int]:
    from gavel.payments.services.holds import holds_maintain as service

    return service()


@shared_task(name="gavel.payments.tasks.janitor")
def janitor() -> dict[str, Any]:
    from gavel.payments.services.janitor import janitor_run
    from gavel.payouts.services import payouts_janitor_run

    return {"payments": janitor_run(), "payouts": payouts_janitor_run()}


@shared_task(name="gavel.payments.tasks.reconcile")
def reconcile() -> int:
    from gavel.ledger.reconciliation import reconciliation_run

    return len(reconciliation_run().differences)
