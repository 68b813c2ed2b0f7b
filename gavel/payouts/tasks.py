"""Celery tasks of the payouts app."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="gavel.payouts.tasks.payout_run")
def payout_run() -> int:
    from gavel.payouts.services import payout_run as service

    return service().payouts_created


@shared_task(name="gavel.payouts.tasks.payout_failed_notify")
def payout_failed_notify(payout_id: int) -> bool:
    from gavel.payouts.services import payout_failed_notify as service

    return service(payout_id=payout_id)
