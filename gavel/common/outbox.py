"""The transactional outbox: enqueue work only after commit, lose nothing if the process dies.

``outbox_enqueue`` must be called inside the transaction that makes the change the task acts
on. It writes an ``OutboxMessage`` row in that transaction and, on commit, publishes it. If the
process dies between the commit and the publish, or the broker is down, ``outbox_sweep`` (run
by beat) publishes it later. The task id is derived from the row, and tasks are idempotent, so a
second publish is harmless.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from gavel.common.context import request_id_current
from gavel.common.models import OutboxMessage

logger = logging.getLogger(__name__)


def outbox_enqueue(
    *,
    task_name: str,
    kwargs: dict[str, Any],
    queue: str = "default",
    eta: datetime | None = None,
) -> int:
    """Record ``task_name(**kwargs)`` to run after the surrounding transaction commits.

    ``eta`` asks the broker to hold the task until then. With Redis, keep it well inside the
    visibility timeout (settings.CELERY_VISIBILITY_TIMEOUT_SECONDS): a message held longer is
    delivered again and again. Long waits belong to a beat scanner, not to an ETA.
    """
    message = OutboxMessage.objects.create(
        task_name=task_name,
        kwargs=kwargs,
        queue=queue,
        eta=eta,
        request_id=request_id_current() or "",
    )
    message_id = message.pk
    transaction.on_commit(lambda: outbox_publish(message_id=message_id))
    return message_id


def outbox_publish(*, message_id: int) -> bool:
    """Publish one outbox row to the broker; True when published. Never raises."""
    from gavel.celery import app

    message = OutboxMessage.objects.filter(pk=message_id, published_at__isnull=True).first()
    if message is None:
        return False
    headers = {"gavel_request_id": message.request_id} if message.request_id else {}
    try:
        app.send_task(
            message.task_name,
            kwargs=message.kwargs,
            queue=message.queue,
            task_id=f"outbox-{message.pk}-{message.publish_attempts}",
            headers=headers,
            eta=message.eta,
        )
    except Exception as error:  # noqa: BLE001 - any broker failure leaves the row for the sweeper
        OutboxMessage.objects.filter(pk=message_id).update(
            publish_attempts=message.publish_attempts + 1, last_error=repr(error)[:2000]
        )
        logger.warning(
            "outbox publish failed; the sweeper will retry",
            extra={"outbox_id": message_id, "task_name": message.task_name, "error": repr(error)},
        )
        return False
    OutboxMessage.objects.filter(pk=message_id).update(
        published_at=timezone.now(), publish_attempts=message.publish_attempts + 1
    )
    return True


def outbox_sweep(*, older_than_seconds: int | None = None, batch_size: int = 500) -> int:
    """Publish rows still unpublished after a grace period; returns how many were published."""
    grace = (
        settings.OUTBOX_RELAY_AFTER_SECONDS if older_than_seconds is None else older_than_seconds
    )
    cutoff = timezone.now() - timedelta(seconds=grace)
    pending = list(
        OutboxMessage.objects.filter(published_at__isnull=True, created_at__lte=cutoff)
        .order_by("id")
        .values_list("id", flat=True)[:batch_size]
    )
    return sum(1 for message_id in pending if outbox_publish(message_id=message_id))


def outbox_purge(*, older_than: timedelta = timedelta(days=7)) -> int:
    """Delete published rows older than ``older_than``."""
    deleted, _ = OutboxMessage.objects.filter(published_at__lt=timezone.now() - older_than).delete()
    return deleted
