"""Draining: one Celery task claims the events that are due and processes them in turn.

Intake stores an event due at once and calls ``drain_request``. A Redis key marks a drain as
requested and not started yet; while it is set, intake requests no other, so the outbox
(which publishes the drain task after commit, and later if the broker is down or the process
dies) is written a few times a second rather than once per event. A drain deletes the key
before it claims anything, so an event stored after that asks for a new drain: no event is left
without a drain after it. If Redis cannot answer, intake requests a drain anyway.

A drain that claims a full batch requests one more drain (if none is pending), so the number
of drains grows to the number of worker processes while a backlog lasts, and falls back to one
when it is gone.

A claim is a lease (``due_at`` moved WEBHOOK_CLAIM_SECONDS ahead, under SKIP LOCKED, so two
drains never take the same event): a drain whose worker dies leaves its events due again when
the lease runs out, and the sweeper requests a drain for them.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from functools import cache

import redis
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from gavel.common.outbox import outbox_enqueue
from gavel.webhooks.models import WebhookEvent
from gavel.webhooks.services.processing import commit_without_waiting_for_disk, event_process

logger = logging.getLogger(__name__)

DRAIN_TASK = "gavel.webhooks.tasks.webhook_events_drain"
QUEUE = "webhooks"


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)


def _signal_key() -> str:
    # One key per database, so test and benchmark databases never share a signal.
    return f"gavel:webhooks:drain_requested:{connection.settings_dict['NAME']}"


def drain_request(*, force: bool = False) -> bool:
    """Make sure a drain runs after this point; True when a drain task was enqueued.

    Call it after the events it is for are committed, or inside the transaction that commits
    them: the outbox publishes after commit. Inside a transaction the request is always
    written, since a rollback would take it back while the Redis mark stayed.
    """
    if not force and not connection.in_atomic_block:
        try:
            requested = _redis().set(
                _signal_key(), "1", nx=True, ex=settings.WEBHOOK_DRAIN_SIGNAL_TTL_SECONDS
            )
        except redis.RedisError as error:
            logger.warning(
                "drain signal unavailable; requesting a drain", extra={"error": repr(error)}
            )
            requested = True
        if not requested:
            return False
    with transaction.atomic():
        outbox_enqueue(task_name=DRAIN_TASK, kwargs={}, queue=QUEUE)
    return True


def drain_signal_reset(**_: object) -> None:
    """On worker start (Celery ``worker_init``): forget a request whose task may have been
    purged with its queue, so the next event asks for a drain at once."""
    _signal_clear()


def _signal_clear() -> None:
    try:
        _redis().delete(_signal_key())
    except redis.RedisError as error:
        logger.warning("drain signal unavailable", extra={"error": repr(error)})


def events_claim(*, limit: int) -> list[int]:
    """Lease up to ``limit`` due, unfinished events to the caller, oldest due first."""
    now = timezone.now()
    with transaction.atomic():
        commit_without_waiting_for_disk()
        claimed = list(
            WebhookEvent.objects.select_for_update(skip_locked=True)
            .filter(status__in=WebhookEvent.UNFINISHED, due_at__lte=now)
            .order_by("due_at", "pk")
            .values_list("pk", flat=True)[:limit]
        )
        if claimed:
            WebhookEvent.objects.filter(pk__in=claimed).update(
                due_at=now + timedelta(seconds=settings.WEBHOOK_CLAIM_SECONDS)
            )
    return claimed


def events_drain(*, worker: str = "", task_id: str = "") -> int:
    """Claim and process due events until none is left or the time budget is spent (then ask
    for another drain); returns how many were processed."""
    _signal_clear()
    deadline = time.monotonic() + settings.WEBHOOK_DRAIN_TIME_BUDGET_SECONDS
    processed = 0
    while time.monotonic() < deadline:
        claimed = events_claim(limit=settings.WEBHOOK_DRAIN_BATCH_SIZE)
        if not claimed:
            return processed
        if len(claimed) == settings.WEBHOOK_DRAIN_BATCH_SIZE:
            # A full batch: more may be due. One more drain (unless one is already requested)
            # lets idle worker processes join, up to their number, while the backlog lasts.
            drain_request()
        for event_pk in claimed:
            event_process(event_pk=event_pk, worker=worker, task_id=task_id)
            processed += 1
    drain_request(force=True)
    return processed
