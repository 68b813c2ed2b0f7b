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

A claim (one statement, under SKIP LOCKED, so two drains never take the same event) moves the
events' ``due_at`` WEBHOOK_CLAIM_SECONDS ahead and starts an attempt on each; the drain then
processes the batch in one transaction that locks the events first (``events_process``). From
then on the row locks, not the lease, keep other drains off them, for as long as the batch
takes; the lease only covers the instant between the claim's commit and those locks. A worker
that dies mid-batch loses its connection, PostgreSQL rolls the batch back and drops its locks,
and the events are due again when the short lease runs out: the next claim, or the sweeper,
takes them. Their attempts were not counted (a batch's attempts count when they end), and that
claim closes them as ``abandoned`` and runs each of those events alone, counted when it starts:
if one of them is what kills workers, it alone reaches the dead-letter limit.
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
    Claim,
    commit_without_waiting_for_disk,
    event_process,
    events_process,
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


_EVENTS = WebhookEvent._meta.db_table
_ATTEMPTS = WebhookAttempt._meta.db_table
_CLAIM_SQL = (
    # Due, unlocked events (a batch in progress holds its events' locks), oldest due first,
    # each with whether its last attempt ended with its worker.
    "WITH due AS (SELECT event.id, event.attempts_count AS previous_count, "  # noqa: S608
    "COALESCE((SELECT attempt.outcome IN ('running', 'lost', 'abandoned') "
    f"FROM {_ATTEMPTS} AS attempt WHERE attempt.event_id = event.id "
    "ORDER BY attempt.id DESC LIMIT 1), false) AS suspect, event.due_at "
    f"FROM {_EVENTS} AS event "
    "WHERE event.status IN ('pending', 'retrying') AND event.due_at <= %(now)s "
    "ORDER BY event.due_at, event.id LIMIT %(limit)s FOR UPDATE OF event SKIP LOCKED), "
    # An event whose last attempt died with its worker runs alone: the first such, or else the
    # whole batch.
    "chosen AS (SELECT id, previous_count FROM due "
    "WHERE NOT EXISTS (SELECT 1 FROM due WHERE suspect) "
    "OR id = (SELECT id FROM due WHERE suspect ORDER BY due_at, id LIMIT 1)), "
    "alone AS (SELECT count(*) = 1 AS isolated FROM chosen), "
    # Attempts left open on them were abandoned by a dead worker (a live drain holds its
    # events' locks, or their lease): closed, counted only if they ran alone.
    f"closed AS (UPDATE {_ATTEMPTS} AS attempt SET outcome = CASE WHEN attempt.isolated "
    "THEN 'lost' ELSE 'abandoned' END, error = %(lost_error)s, finished_at = %(now)s "
    "FROM chosen WHERE attempt.event_id = chosen.id AND attempt.finished_at IS NULL), "
    # The lease; an attempt running alone is counted now, one in a batch when it ends.
    f"leased AS (UPDATE {_EVENTS} AS event SET due_at = %(lease_until)s, "
    "attempts_count = CASE WHEN alone.isolated AND chosen.previous_count < %(max_attempts)s "
    "THEN chosen.previous_count + 1 ELSE chosen.previous_count END "
    "FROM chosen, alone WHERE event.id = chosen.id "
    "RETURNING event.id, chosen.previous_count, alone.isolated), "
    f"started AS (INSERT INTO {_ATTEMPTS} "
    "(event_id, number, action, outcome, error, worker, task_id, started_at, isolated) "
    "SELECT id, previous_count + 1, 'handle', 'running', '', %(worker)s, %(task_id)s, "
    "%(now)s, isolated FROM leased WHERE previous_count < %(max_attempts)s "
    "RETURNING event_id, id) "
    "SELECT leased.id, started.id, leased.isolated FROM leased "
    "LEFT JOIN started ON started.event_id = leased.id ORDER BY leased.id"
)
LOST_ERROR = "the worker stopped before the attempt ended"


def events_claim_with_attempts(*, limit: int, worker: str = "", task_id: str = "") -> list[Claim]:
    """Lease due events and start an attempt on each, in one statement on PostgreSQL (an
    attempt None for an event out of attempts).

    An event whose last attempt died with its worker is claimed alone; so is a lone due event.
    An attempt that runs alone is counted when it starts (if its worker dies, its event is the
    one to blame); attempts of a batch are counted when they end, in the batch's commit, so a
    worker that dies mid-batch costs none of its events an attempt.
    """
    if connection.vendor != "postgresql":
        # SQLite (the demo): one at a time, each attempt counted when it starts.
        return [Claim(event_pk=pk, attempt_pk=None, counted=True) for pk in events_claim(limit=1)]
    now = timezone.now()
    with transaction.atomic():
        commit_without_waiting_for_disk()
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
                    "lost_error": LOST_ERROR,
                },
            )
            rows = cursor.fetchall()
    return [
        Claim(
            event_pk=int(event_pk),
            attempt_pk=int(attempt_pk) if attempt_pk else None,
            counted=bool(isolated),
        )
        for event_pk, attempt_pk, isolated in rows
    ]


# A batch's row locks last as long as its worker's connection. A worker process that dies
# closes it at once; a worker host that vanishes is noticed by PostgreSQL's TCP keepalive
# probes on the connection: idle 10 s, then every 5 s, given up after 3 (about 25 s), instead
# of the system's default of over two hours.
_DEAD_PEER_PROBES_SQL = (
    "SELECT set_config('tcp_keepalives_idle', '10', false), "
    "set_config('tcp_keepalives_interval', '5', false), "
    "set_config('tcp_keepalives_count', '3', false)"
)


def _dead_peer_probes_set() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_DEAD_PEER_PROBES_SQL)


def batch_size_next(*, size: int, claimed: int, seconds: float) -> int:
    """The next claim's size: as many events as the last batch's pace fits in
    WEBHOOK_DRAIN_BATCH_TARGET_MS, at most twice ``size`` and WEBHOOK_DRAIN_BATCH_SIZE, at least
    one. A batch holds its objects' locks (and its Celery task) for as long as it runs, so slow
    handlers (a Stripe call each) get small batches and quick ones large batches."""
    maximum: int = settings.WEBHOOK_DRAIN_BATCH_SIZE
    if claimed <= 0:
        return size
    pace_seconds = max(seconds, 1e-6) / claimed
    fitting = int(settings.WEBHOOK_DRAIN_BATCH_TARGET_MS / 1000 / pace_seconds)
    return max(1, min(maximum, 2 * size, fitting))


def events_drain(*, worker: str = "", task_id: str = "") -> int:
    """Claim and process due events, a batch per transaction, until none is left or the time
    budget is spent (then ask for another drain); returns how many were processed.

    The first claim takes an eighth of WEBHOOK_DRAIN_BATCH_SIZE; each next one is sized by the
    last batch's pace (``batch_size_next``)."""
    _signal_clear()
    _dead_peer_probes_set()
    started = time.monotonic()
    # Requests skipped within the reuse window before this start are covered by a last claim
    # made after it (module docstring); twice the window leaves a margin.
    last_claim_not_before = started + 2 * settings.WEBHOOK_DRAIN_SIGNAL_REUSE_MS / 1000
    deadline = started + settings.WEBHOOK_DRAIN_TIME_BUDGET_SECONDS
    processed = 0
    size = max(1, settings.WEBHOOK_DRAIN_BATCH_SIZE // 8)
    while time.monotonic() < deadline:
        claimed = events_claim_with_attempts(limit=size, worker=worker, task_id=task_id)
        if not claimed:
            wait_seconds = last_claim_not_before - time.monotonic()
            if wait_seconds <= 0:
                return processed
            time.sleep(wait_seconds)
            continue
        if len(claimed) == size:
            # A full batch: more may be due. One more drain (unless one is already requested)
            # lets idle worker processes join, up to their number, while the backlog lasts.
            drain_request()
        batch_started = time.monotonic()
        if connection.vendor != "postgresql":
            for claim in claimed:
                event_process(event_pk=claim.event_pk, worker=worker, task_id=task_id)
        else:
            events_process(claims=claimed)
        size = batch_size_next(
            size=size, claimed=len(claimed), seconds=time.monotonic() - batch_started
        )
        processed += len(claimed)
    drain_request(force=True)
    return processed
