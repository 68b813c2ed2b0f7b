"""Processing one stored event: route it (forward, handle, ignore), apply it in order under its
object's row lock, record the attempt, and on failure schedule a retry or dead-letter it."""

from __future__ import annotations

import json
import logging
import random
import traceback
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from gavel.gateway.client import livemode_expected
from gavel.gateway.events import related_object_fetch
from gavel.observability.scrub import scrub_text
from gavel.webhooks import metrics
from gavel.webhooks.envelope import thin_type_to_v1
from gavel.webhooks.lock_objects import event_lock, object_cursor_lock
from gavel.webhooks.models import WebhookAttempt, WebhookEvent, WebhookObjectCursor
from gavel.webhooks.ordering import progress_rank
from gavel.webhooks.registry import Handler, IncomingEvent, Ordering, handler_for, ordering_for
from gavel.webhooks.services.forwarding import ForwardFailed, event_forward, legacy_owns

logger = logging.getLogger(__name__)

Status = WebhookEvent.Status
Outcome = WebhookAttempt.Outcome

_STATUS_BY_OUTCOME = {
    Outcome.PROCESSED: Status.PROCESSED,
    Outcome.SUPERSEDED: Status.SUPERSEDED,
    Outcome.FORWARDED: Status.FORWARDED,
    Outcome.IGNORED: Status.IGNORED,
}
ERROR_MAX_CHARS = 4000


def commit_without_waiting_for_disk() -> None:
    """Let the surrounding transaction's commit return before its WAL reaches the disk.

    Only for bookkeeping whose loss in a PostgreSQL crash (not a worker's) is harmless: the
    start of an attempt, a claim's lease. A worker that dies has still committed it. The event's
    outcome and the handler's writes always commit synchronously.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def retry_delay_seconds(*, attempt_number: int) -> float:
    """Exponential backoff with equal jitter: half the step fixed, half random."""
    base: int = settings.WEBHOOK_RETRY_BASE_SECONDS
    step = min(float(settings.WEBHOOK_RETRY_MAX_SECONDS), base * 2.0 ** max(attempt_number - 1, 0))
    return step / 2 + random.uniform(0, step / 2)


def _error_text(error: BaseException) -> str:
    text = "".join(traceback.format_exception(error, limit=-8))
    return scrub_text(text)[-ERROR_MAX_CHARS:]


def incoming_event_build(
    event: WebhookEvent, payload: dict[str, Any], *, fetch: bool = True
) -> IncomingEvent:
    """The handler's view of a stored event; a thin event's object is fetched from Stripe."""
    if event.source == WebhookEvent.Source.THIN:
        related = payload.get("related_object") or {}
        data_object: dict[str, Any] = {}
        if fetch and isinstance(related, dict) and isinstance(related.get("url"), str):
            data_object = related_object_fetch(url=related["url"], account=event.account or None)
        return IncomingEvent(
            id=event.stripe_event_id,
            type=thin_type_to_v1(event.event_type),
            created=int(event.stripe_created_at.timestamp()),
            livemode=event.livemode,
            data_object=data_object,
            account=event.account or None,
            raw=payload,
            thin=True,
        )
    data = payload.get("data") or {}
    previous = data.get("previous_attributes")
    return IncomingEvent(
        id=event.stripe_event_id,
        type=event.event_type,
        created=int(event.stripe_created_at.timestamp()),
        livemode=event.livemode,
        data_object=data.get("object") or {},
        account=event.account or None,
        previous_attributes=previous if isinstance(previous, dict) else None,
        api_version=event.api_version or None,
        raw=payload,
    )


@dataclass(frozen=True, slots=True)
class _CursorAdvance:
    """The object's cursor moves to this event, written with the event's new status."""

    cursor_pk: int
    created_at: datetime
    rank: int
    event_id: str


def _object_key(event: WebhookEvent) -> str:
    """The ordering key of the event's object. Scoped by connected account: most Stripe ids are
    unique, but some are not (a capability is ``card_payments`` on every account)."""
    return f"{event.account or 'platform'}/{event.object_id}"[:255]


def _apply_in_order(
    event: WebhookEvent, incoming: IncomingEvent, handler: Handler
) -> tuple[Outcome, _CursorAdvance | None]:
    """Apply under the object's row lock; an event older than the last applied one is
    superseded (LATEST_WINS) or handed over flagged (REFETCH, thin events)."""
    if not event.object_id:
        handler(incoming)
        return Outcome.PROCESSED, None
    cursor = object_cursor_lock(object_id=_object_key(event))
    rank = progress_rank(object_type=event.object_type, data_object=incoming.data_object)
    is_newer = (event.stripe_created_at, rank, event.stripe_event_id) > (
        cursor.applied_created_at,
        cursor.applied_rank,
        cursor.applied_event_id,
    )
    ordering = Ordering.REFETCH if incoming.thin else ordering_for(incoming.type)
    if not is_newer and ordering == Ordering.LATEST_WINS:
        return Outcome.SUPERSEDED, None
    handler(replace(incoming, superseded=not is_newer))
    if not is_newer:
        return Outcome.PROCESSED, None
    return Outcome.PROCESSED, _CursorAdvance(
        cursor_pk=cursor.pk,
        created_at=event.stripe_created_at,
        rank=rank,
        event_id=event.stripe_event_id,
    )


NOT_OUR_MODE = "livemode differs from the configured key: kept, never applied"


def _route_and_apply(
    event: WebhookEvent,
) -> tuple[Outcome, WebhookAttempt.Action, _CursorAdvance | None]:
    handle = WebhookAttempt.Action.HANDLE
    if event.livemode != livemode_expected():
        # A connected account's test-mode event on a live endpoint, even when replayed.
        return Outcome.IGNORED, handle, None
    payload = json.loads(event.payload)
    incoming = incoming_event_build(event, payload)
    if legacy_owns(account=incoming.account, data_object=incoming.data_object):
        event_forward(payload=event.payload)
        return Outcome.FORWARDED, WebhookAttempt.Action.FORWARD, None
    handler = handler_for(incoming.type)
    if handler is None:
        return Outcome.IGNORED, handle, None
    outcome, advance = _apply_in_order(event, incoming, handler)
    return outcome, handle, advance


def _attempt_finish(
    attempt_pk: int,
    *,
    outcome: Outcome,
    action: WebhookAttempt.Action = WebhookAttempt.Action.HANDLE,
    error: str = "",
) -> None:
    WebhookAttempt.objects.filter(pk=attempt_pk).update(
        outcome=outcome, action=action, error=error, finished_at=timezone.now()
    )


_FINISH_SQL = (
    f"WITH attempt AS (UPDATE {WebhookAttempt._meta.db_table} "  # noqa: S608 - model tables
    "SET outcome = %(outcome)s, action = %(action)s, error = '', finished_at = %(now)s "
    "WHERE id = %(attempt_pk)s), "
    f"object_cursor AS (UPDATE {WebhookObjectCursor._meta.db_table} "
    "SET applied_created_at = %(cursor_created_at)s, applied_rank = %(cursor_rank)s, "
    "applied_event_id = %(cursor_event_id)s, updated_at = %(now)s WHERE id = %(cursor_pk)s) "
    f"UPDATE {WebhookEvent._meta.db_table} SET status = %(status)s, due_at = NULL, "
    "finished_at = %(now)s, last_error = %(last_error)s WHERE id = %(event_pk)s"
)


def _finish(
    event: WebhookEvent,
    *,
    attempt_pk: int,
    outcome: Outcome,
    action: WebhookAttempt.Action,
    advance: _CursorAdvance | None,
) -> None:
    """Write the event's new status, the attempt's end and the object cursor's move: one
    statement on PostgreSQL (a cursor id of NULL matches no row)."""
    if connection.vendor != "postgresql":
        event.save(update_fields=["status", "due_at", "finished_at", "last_error"])
        _attempt_finish(attempt_pk, outcome=outcome, action=action)
        if advance is not None:
            WebhookObjectCursor.objects.filter(pk=advance.cursor_pk).update(
                applied_created_at=advance.created_at,
                applied_rank=advance.rank,
                applied_event_id=advance.event_id,
                updated_at=event.finished_at,
            )
        return
    with connection.cursor() as cursor:
        cursor.execute(
            _FINISH_SQL,
            {
                "outcome": outcome,
                "action": action,
                "now": event.finished_at,
                "attempt_pk": attempt_pk,
                "cursor_pk": advance.cursor_pk if advance else None,
                "cursor_created_at": advance.created_at if advance else None,
                "cursor_rank": advance.rank if advance else 0,
                "cursor_event_id": advance.event_id if advance else "",
                "status": event.status,
                "last_error": event.last_error,
                "event_pk": event.pk,
            },
        )


def _dead_letter(event_pk: int, *, reason: str) -> None:
    with transaction.atomic():
        event = event_lock(event_pk=event_pk)
        if event.status not in WebhookEvent.UNFINISHED:
            return
        event.status = Status.DEAD
        event.due_at = None
        event.finished_at = timezone.now()
        event.last_error = reason
        event.save(update_fields=["status", "due_at", "finished_at", "last_error"])
    metrics.DEAD_LETTERS.labels(event.event_type).inc()
    logger.error(
        "webhook event dead-lettered",
        extra={"stripe_event_id": event.stripe_event_id, "event_type": event.event_type},
    )


def _attempt_fail(
    event_pk: int, attempt_pk: int, error: BaseException, *, action: WebhookAttempt.Action
) -> str:
    text = _error_text(error)
    now = timezone.now()
    with transaction.atomic():
        event = event_lock(event_pk=event_pk)
        _attempt_finish(attempt_pk, outcome=Outcome.FAILED, action=action, error=text)
        if event.status not in WebhookEvent.UNFINISHED:
            return str(event.status)
        event.last_error = text
        if event.attempts_count >= settings.WEBHOOK_MAX_ATTEMPTS:
            event.status = Status.DEAD
            event.due_at = None
            event.finished_at = now
        else:
            event.status = Status.RETRYING
            delay = retry_delay_seconds(attempt_number=event.attempts_count)
            event.due_at = now + timedelta(seconds=delay)
        event.save(update_fields=["status", "due_at", "finished_at", "last_error"])
    metrics.PROCESSED.labels(event.event_type, Outcome.FAILED).inc()
    if event.status == Status.DEAD:
        metrics.DEAD_LETTERS.labels(event.event_type).inc()
        logger.error(
            "webhook event dead-lettered after its retries",
            extra={"stripe_event_id": event.stripe_event_id, "attempts": event.attempts_count},
        )
    else:
        metrics.RETRIES.labels(event.event_type).inc()
        logger.warning(
            "webhook event attempt failed; will retry",
            extra={"stripe_event_id": event.stripe_event_id, "attempts": event.attempts_count},
        )
    return str(event.status)


_ATTEMPT_START_SQL = (
    "WITH started AS ("  # noqa: S608 - table names from the models
    f"UPDATE {WebhookEvent._meta.db_table} SET attempts_count = attempts_count + 1 "
    "WHERE id = %(event_pk)s AND status IN ('pending', 'retrying') "
    "AND attempts_count < %(max_attempts)s RETURNING id, attempts_count) "
    f"INSERT INTO {WebhookAttempt._meta.db_table} "
    "(event_id, number, action, outcome, error, worker, task_id, started_at) "
    "SELECT id, attempts_count, 'handle', 'running', '', %(worker)s, %(task_id)s, %(now)s "
    "FROM started RETURNING id"
)


def _attempt_start(*, event_pk: int, worker: str, task_id: str) -> int | None:
    """Count the attempt on the event and record its start, committed at once (so an attempt
    whose worker dies is still counted and shown); None when the event is missing, finished,
    or out of attempts. One statement on PostgreSQL."""
    if connection.vendor != "postgresql":
        return _attempt_start_portable(event_pk=event_pk, worker=worker, task_id=task_id)
    with connection.cursor() as cursor:
        cursor.execute(
            _ATTEMPT_START_SQL,
            {
                "event_pk": event_pk,
                "max_attempts": settings.WEBHOOK_MAX_ATTEMPTS,
                "worker": worker[:255],
                "task_id": task_id[:255],
                "now": timezone.now(),
            },
        )
        row = cursor.fetchone()
    return int(row[0]) if row else None


def _attempt_start_portable(*, event_pk: int, worker: str, task_id: str) -> int | None:
    """The same, for databases without data-modifying CTEs (SQLite, in the demo)."""
    with transaction.atomic():
        counted = WebhookEvent.objects.filter(
            pk=event_pk,
            status__in=WebhookEvent.UNFINISHED,
            attempts_count__lt=settings.WEBHOOK_MAX_ATTEMPTS,
        ).update(attempts_count=F("attempts_count") + 1)
        if not counted:
            return None
        number = WebhookEvent.objects.values_list("attempts_count", flat=True).get(pk=event_pk)
        attempt = WebhookAttempt.objects.create(
            event_id=event_pk,
            number=number,
            worker=worker[:255],
            task_id=task_id[:255],
            started_at=timezone.now(),
        )
    return attempt.pk


def event_process(*, event_pk: int, worker: str = "", task_id: str = "") -> str:
    """Process one stored event once in effect; returns the event's resulting status.

    Safe to run any number of times, concurrently too: the event row lock and its status make
    every run after the first a no-op, and the handler's writes commit in the same transaction
    as the event's new status.
    """
    attempt_pk = _attempt_start(event_pk=event_pk, worker=worker, task_id=task_id)
    if attempt_pk is None:
        current = WebhookEvent.objects.filter(pk=event_pk).values("status").first()
        if current is None or current["status"] not in WebhookEvent.UNFINISHED:
            return str(current["status"]) if current else "missing"
        # Every attempt so far died with its worker (a poison event that kills the process).
        _dead_letter(event_pk, reason="attempt limit reached: workers lost during attempts")
        return str(Status.DEAD)
    return attempt_run(event_pk=event_pk, attempt_pk=attempt_pk)


def attempt_run(*, event_pk: int, attempt_pk: int) -> str:
    """Run an attempt already counted and recorded (``attempt_pk``); the event's new status."""
    try:
        with transaction.atomic():
            event = event_lock(event_pk=event_pk)
            if event.status not in WebhookEvent.UNFINISHED:
                _attempt_finish(attempt_pk, outcome=Outcome.ALREADY_FINISHED)
                return str(event.status)
            outcome, action, advance = _route_and_apply(event)
            finished_at = timezone.now()
            event.status = _STATUS_BY_OUTCOME[outcome]
            event.due_at = None
            event.finished_at = finished_at
            event.last_error = "" if event.livemode == livemode_expected() else NOT_OUR_MODE
            _finish(event, attempt_pk=attempt_pk, outcome=outcome, action=action, advance=advance)
    except Exception as error:  # noqa: BLE001 - any failure is recorded and retried
        forwarding = isinstance(error, ForwardFailed)
        if forwarding:
            metrics.FORWARD_FAILURES.inc()
        action = WebhookAttempt.Action.FORWARD if forwarding else WebhookAttempt.Action.HANDLE
        return _attempt_fail(event_pk, attempt_pk, error, action=action)
    metrics.PROCESSED.labels(event.event_type, outcome).inc()
    metrics.PROCESSING_LAG.observe((finished_at - event.received_at).total_seconds())
    return str(event.status)
