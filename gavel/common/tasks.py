"""Periodic infrastructure tasks."""

from __future__ import annotations

from celery import shared_task

from gavel.common.idempotency import idempotency_keys_purge as _idempotency_keys_purge
from gavel.common.outbox import outbox_purge
from gavel.common.outbox import outbox_sweep as _outbox_sweep


@shared_task(name="gavel.common.tasks.outbox_sweep", acks_late=True)
def outbox_sweep() -> int:
    published = _outbox_sweep()
    outbox_purge()
    return published


@shared_task(name="gavel.common.tasks.idempotency_keys_purge", acks_late=True)
def idempotency_keys_purge() -> int:
    return _idempotency_keys_purge()
