"""Draining: one Celery task claims the events that are due and processes them in turn.

Intake stores an event due at once and calls ``drain_request``. A Redis key marks a drain as
requested and not started yet; while it is set, intake requests no other, so the outbox
(which publishes the drain task after commit, and later if the broker is down or the process
dies) is written a few times a second rather than once per event. A drain deletes the key
before it claims anything, so an event stored after that asks for a new drain: no event is left
without a drain after it. If Redis cannot answer, intake requests a drain anyway.

Within one process, a request made less than WEBHOOK_DRAIN_SIGNAL_REUSE_MS after this process
saw the mark set skips Redis too (a third of intake's CPU otherwise). That is safe because a
drain never stops before that long again after its start: when it finds nothing due earlier,
it waits and claims once more, so an event whose request was skipped (committed before the
window closed, hence before the drain's last claim) is still taken.

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
from gavel.webhooks.models import WebhookAttempt, WebhookEvent
from gavel.webhooks.services.processing import (
    attempt_run,
    commit_without_waiting_for_disk,
    event_process,
)

logger = logging.getLogger(__name__)

DRAIN_TASK = "gavel.webhooks.tasks.webhook_events_drain"
QUEUE = "webhooks"


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)


def _signal_key() -> str:
    # One key per database, so test and benchmark databases never share a signal.
    return f"gavel:webhooks:drain_requested:{connection.settings_dict['NAME']}"


class _SeenRequested:
    """When this process last saw a drain requested and not started (monotonic seconds)."""

    at = float("-inf")


def drain_request(*, force: bool = False) -> bool:
    """Make sure a drain runs after this point; True when a drain task was enqueued.

    Call it after the events it is for are committed, or inside the transaction that commits
    them: the outbox publishes after commit. Inside a transaction the request is always
    written, since a rollback would take it back while the Redis mark stayed.
    """
    if not force and not connection.in_atomic_block:
        now = time.monotonic()
        if now - _SeenRequested.at < settings.WEBHOOK_DRAIN_SIGNAL_REUSE_MS / 1000:
            return False
        try:
            requested = _redis().set(
                _signal_key(), "1", nx=True, ex=settings.WEBHOOK_DRAIN_SIGNAL_TTL_SECONDS
            )
            _SeenRequested.at = now
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
    _SeenRequested.at = float("-inf")
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


_CLAIM_SQL = (
    "WITH due AS ("  # noqa: S608 - table names from the models
    f"SELECT id, attempts_count AS previous_count FROM {WebhookEvent._meta.db_table} "
    "WHERE status IN ('pending', 'retrying') AND due_at <= %(now)s "
    "ORDER BY due_at, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED), "
    f"leased AS (UPDATE {WebhookEvent._meta.db_table} AS event "
    "SET due_at = %(lease_until)s, attempts_count = CASE "
    "WHEN due.previous_count < %(max_attempts)s THEN due.previous_count + 1 "
    "ELSE due.previous_count END FROM due WHERE event.id = due.id "
    "RETURNING event.id, event.attempts_count, due.previous_count < %(max_attempts)s AS counted), "
    f"started AS (INSERT INTO {WebhookAttempt._meta.db_table} "
    "(event_id, number, action, outcome, error, worker, task_id, started_at) "
    "SELECT id, attempts_count, 'handle', 'running', '', %(worker)s, %(task_id)s, %(now)s "
    "FROM leased WHERE counted RETURNING event_id, id) "
    "SELECT leased.id, started.id FROM leased "
    "LEFT JOIN started ON started.event_id = leased.id ORDER BY leased.id"
)


def events_claim_with_attempts(
    *, limit: int, worker: str = "", task_id: str = ""
) -> list[tuple[int, int | None]]:
    """Lease due events and start an attempt on each, in one statement on PostgreSQL:
    (event pk, attempt pk), the attempt None for an event out of attempts.

    An attempt starts when its drain claims the event; if the worker dies, every attempt of
    its batch is counted and later closed as lost (the batch is small).
    """
    if connection.vendor != "postgresql":
        return [(event_pk, None) for event_pk in events_claim(limit=limit)]
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_SQL,
            {
                "now": now,
                "limit": limit,
                "lease_until": now + timedelta(seconds=settings.WEBHOOK_CLAIM_SECONDS),
                "max_attempts": settings.WEBHOOK_MAX_ATTEMPTS,
                "worker": worker[:255],
                "task_id": task_id[:255],
            },
        )
        rows = cursor.fetchall()
    return [
        (int(event_pk), int(attempt_pk) if attempt_pk else None) for event_pk, attempt_pk in rows
    ]


def events_drain(*, worker: str = "", task_id: str = "") -> int:
    """Claim and process due events until none is left or the time budget is spent (then ask
    for another drain); returns how many were processed."""
    _signal_clear()
    started = time.monotonic()
    # Requests skipped within the reuse window before this start are covered by a last claim
    # made after it (module docstring); twice the window leaves a margin.
    last_claim_not_before = started + 2 * settings.WEBHOOK_DRAIN_SIGNAL_REUSE_MS / 1000
    deadline = started + settings.WEBHOOK_DRAIN_TIME_BUDGET_SECONDS
    processed = 0
    while time.monotonic() < deadline:
        claimed = events_claim_with_attempts(
            limit=settings.WEBHOOK_DRAIN_BATCH_SIZE, worker=worker, task_id=task_id
        )
        if not claimed:
            wait_seconds = last_claim_not_before - time.monotonic()
            if wait_seconds <= 0:
                return processed
            time.sleep(wait_seconds)
            continue
        if len(claimed) == settings.WEBHOOK_DRAIN_BATCH_SIZE:
            # A full batch: more may be due. One more drain (unless one is already requested)
            # lets idle worker processes join, up to their number, while the backlog lasts.
            drain_request()
        for event_pk, attempt_pk in claimed:
            if attempt_pk is None:  # portable path, or out of attempts (dead-lettered there)
                event_process(event_pk=event_pk, worker=worker, task_id=task_id)
            else:
                attempt_run(event_pk=event_pk, attempt_pk=attempt_pk)
            processed += 1
    drain_request(force=True)
    return processed
