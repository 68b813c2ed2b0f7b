"""Processing stored events, a claimed batch at a time: route each (forward, handle, ignore),
apply it in order under its object's row lock, record its attempt, and on failure schedule a
retry or dead-letter it.

A batch is one transaction: the events are locked (the lock is what keeps every other drain
off them while they are processed), their objects' cursors are locked in one statement in key
order (so two batches never deadlock on them), each handler runs in a savepoint of its own (a
failing event rolls back its own writes and nothing else), and one statement writes every
attempt's end, every event's status and every cursor's move; one durable commit. A batch of
one is the same code: ``event_process`` runs it for one event.
"""

from __future__ import annotations

import json
import logging
import random
import traceback
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from gavel.gateway.client import livemode_expected
from gavel.gateway.errors import GatewayFinalError
from gavel.gateway.events import related_object_fetch
from gavel.observability.scrub import scrub_text
from gavel.webhooks import metrics
from gavel.webhooks.envelope import thin_type_to_v1
from gavel.webhooks.lock_objects import event_lock, events_lock, object_cursors_lock
from gavel.webhooks.models import WebhookAttempt, WebhookEvent, WebhookObjectCursor
from gavel.webhooks.ordering import progress_rank
from gavel.webhooks.registry import Handler, IncomingEvent, Ordering, handler_for, ordering_for
from gavel.webhooks.services.forwarding import ForwardFailed, event_forward, legacy_owns

logger = logging.getLogger(__name__)

Status = WebhookEvent.Status
Outcome = WebhookAttempt.Outcome
Action = WebhookAttempt.Action

_STATUS_BY_OUTCOME = {
    Outcome.PROCESSED: Status.PROCESSED,
    Outcome.SUPERSEDED: Status.SUPERSEDED,
    Outcome.FORWARDED: Status.FORWARDED,
    Outcome.IGNORED: Status.IGNORED,
}
ERROR_MAX_CHARS = 4000
NOT_OUR_MODE = "livemode differs from the configured key: kept, never applied"
# Stripe's answers for an object that can no longer be read: gone (404), or on an account that
# is no longer ours to read (403 on a connected account's object, e.g. after the seller
# disconnected). Retrying cannot help. A 403 on the platform's own object is our key refused
# (a restricted key missing a permission): a failure, retried and dead-lettered like any other.
RELATED_OBJECT_GONE_STATUSES = (403, 404)
RELATED_OBJECT_GONE = "the thin event's related object can no longer be read ({detail}): ignored"


@dataclass(frozen=True, slots=True)
class Claim:
    """An event a drain has leased, with the attempt started on it (None: the event is out of
    attempts). ``counted``: the attempt was counted on the event when it started (it runs
    alone, so if its worker dies it is the one to blame); otherwise it is counted when it ends,
    in the batch's commit, and a batch whose worker dies counts against none of its events."""

    event_pk: int
    attempt_pk: int | None
    counted: bool = True


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


def _object_key(event: WebhookEvent) -> str:
    """The ordering key of the event's object. Scoped by connected account: most Stripe ids are
    unique, but some are not (a capability is ``card_payments`` on every account)."""
    return f"{event.account or 'platform'}/{event.object_id}"[:255]


@dataclass(slots=True)
class _Plan:
    """What to do with one locked event, decided before anything runs."""

    event: WebhookEvent
    claim: Claim
    outcome: Outcome | None = None  # decided without running anything (ignored)
    incoming: IncomingEvent | None = None
    handler: Handler | None = None
    forward: bool = False
    cursor_key: str = ""  # the object's cursor to lock ("" when there is no object)
    note: str = ""  # why an event ended as it did, kept in its last_error


@dataclass(slots=True)
class _Result:
    """One attempt's end and its event's new state, written by the batch's finish."""

    plan: _Plan
    outcome: Outcome
    action: Action = Action.HANDLE
    error: str = ""
    finished_at: datetime = field(default_factory=timezone.now)
    status: str = ""  # "" when the event is left as it is (already finished)
    due_at: datetime | None = None
    last_error: str = ""
    counted_now: int = 0  # added to the event's attempts_count


def _plan(event: WebhookEvent, claim: Claim) -> _Plan:
    plan = _Plan(event=event, claim=claim)
    if event.livemode != livemode_expected():
        # A connected account's test-mode event on a live endpoint, even when replayed.
        plan.outcome = Outcome.IGNORED
        return plan
    payload = json.loads(event.payload)
    thin = event.source == WebhookEvent.Source.THIN
    # A thin event's object is fetched (and the legacy rule read) when it runs, in its savepoint.
    plan.incoming = incoming_event_build(event, payload, fetch=False)
    if not thin and legacy_owns(
        account=plan.incoming.account, data_object=plan.incoming.data_object
    ):
        plan.forward = True
        return plan
    plan.handler = handler_for(plan.incoming.type)
    if plan.handler is None and not thin:
        plan.outcome = Outcome.IGNORED
        return plan
    if event.object_id:
        plan.cursor_key = _object_key(event)
    return plan


def _is_newer(event: WebhookEvent, rank: int, cursor: WebhookObjectCursor) -> bool:
    return (event.stripe_created_at, rank, event.stripe_event_id) > (
        cursor.applied_created_at,
        cursor.applied_rank,
        cursor.applied_event_id,
    )


def _run(plan: _Plan, cursor: WebhookObjectCursor | None) -> tuple[Outcome, Action, int | None]:
    """Forward or apply one event (inside its savepoint); the outcome, the action, and the rank
    to move its object's cursor to (None: the cursor stays)."""
    event = plan.event
    incoming = plan.incoming
    assert incoming is not None
    if plan.forward:
        event_forward(payload=event.payload)
        return Outcome.FORWARDED, Action.FORWARD, None
    handler = plan.handler
    if incoming.thin:
        try:
            incoming = incoming_event_build(event, incoming.raw)
        except GatewayFinalError as error:
            if error.http_status not in RELATED_OBJECT_GONE_STATUSES or (
                error.http_status == 403 and not event.account
            ):
                raise
            detail = f"{error.http_status} {error.code or ''}".strip()
            plan.note = RELATED_OBJECT_GONE.format(detail=detail)
            logger.warning(
                "thin event ignored: related object gone",
                extra={"stripe_event_id": event.stripe_event_id, "detail": detail},
            )
            return Outcome.IGNORED, Action.HANDLE, None
        if legacy_owns(account=incoming.account, data_object=incoming.data_object):
            event_forward(payload=event.payload)
            return Outcome.FORWARDED, Action.FORWARD, None
        if handler is None:
            return Outcome.IGNORED, Action.HANDLE, None
    assert handler is not None
    if cursor is None:
        handler(incoming)
        return Outcome.PROCESSED, Action.HANDLE, None
    rank = progress_rank(object_type=event.object_type, data_object=incoming.data_object)
    is_newer = _is_newer(event, rank, cursor)
    ordering = Ordering.REFETCH if incoming.thin else ordering_for(incoming.type)
    if not is_newer and ordering == Ordering.LATEST_WINS:
        return Outcome.SUPERSEDED, Action.HANDLE, None
    handler(replace(incoming, superseded=not is_newer))
    return Outcome.PROCESSED, Action.HANDLE, rank if is_newer else None


def _succeeded(plan: _Plan, outcome: Outcome, action: Action) -> _Result:
    event = plan.event
    return _Result(
        plan=plan,
        outcome=outcome,
        action=action,
        status=_STATUS_BY_OUTCOME[outcome],
        last_error=plan.note or ("" if event.livemode == livemode_expected() else NOT_OUR_MODE),
        counted_now=0 if plan.claim.counted else 1,
    )


def _failed(plan: _Plan, error: BaseException) -> _Result:
    event = plan.event
    text = _error_text(error)
    action = Action.FORWARD if isinstance(error, ForwardFailed) else Action.HANDLE
    counted_now = 0 if plan.claim.counted else 1
    attempts = event.attempts_count + counted_now
    now = timezone.now()
    result = _Result(
        plan=plan,
        outcome=Outcome.FAILED,
        action=action,
        error=text,
        finished_at=now,
        last_error=text,
        counted_now=counted_now,
    )
    if attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        result.status = Status.DEAD
    else:
        result.status = Status.RETRYING
        result.due_at = now + timedelta(seconds=retry_delay_seconds(attempt_number=attempts))
    return result


class _BatchNeedsSavepoints(Exception):
    """An event failed in a batch run without savepoints: the batch is rolled back and run
    again with a savepoint per event."""


def _apply(plan: _Plan, cursors: dict[str, WebhookObjectCursor], *, savepoints: bool) -> _Result:
    """Apply one event of the batch. With ``savepoints``, a handler or a forward runs in a
    savepoint of its own and its failure is recorded; without, a failure aborts the batch."""
    if plan.outcome is not None:
        return _succeeded(plan, plan.outcome, Action.HANDLE)
    event = plan.event
    cursor = cursors.get(plan.cursor_key) if plan.cursor_key else None
    incoming = plan.incoming
    assert incoming is not None
    if (
        cursor is not None
        and not plan.forward
        and not incoming.thin
        and ordering_for(incoming.type) == Ordering.LATEST_WINS
        and not _is_newer(
            event,
            progress_rank(object_type=event.object_type, data_object=incoming.data_object),
            cursor,
        )
    ):
        return _succeeded(plan, Outcome.SUPERSEDED, Action.HANDLE)  # nothing runs
    if savepoints:
        try:
            with transaction.atomic():
                outcome, action, advance_rank = _run(plan, cursor)
        except Exception as error:  # noqa: BLE001 - any failure is recorded and retried
            if isinstance(error, ForwardFailed):
                metrics.FORWARD_FAILURES.inc()
            return _failed(plan, error)
    else:
        try:
            outcome, action, advance_rank = _run(plan, cursor)
        except Exception as error:
            raise _BatchNeedsSavepoints from error
    if cursor is not None and advance_rank is not None:
        # Held in memory until the batch's finish writes it; later events of the batch about
        # the same object compare with it.
        cursor.applied_created_at = event.stripe_created_at
        cursor.applied_rank = advance_rank
        cursor.applied_event_id = event.stripe_event_id
        cursor.updated_at = timezone.now()
    return _succeeded(plan, outcome, action)


_FINISH_SQL = (
    "WITH attempt_ends AS ("  # noqa: S608 - table names from the models
    f"UPDATE {WebhookAttempt._meta.db_table} AS attempt SET outcome = ends.outcome, "
    "action = ends.action, error = ends.error, finished_at = ends.finished_at "
    "FROM unnest(%(attempt_ids)s::bigint[], %(outcomes)s::text[], %(actions)s::text[], "
    "%(errors)s::text[], %(attempt_ends)s::timestamptz[]) "
    "AS ends(id, outcome, action, error, finished_at) "
    "WHERE attempt.id = ends.id AND attempt.finished_at IS NULL), "
    f"cursor_moves AS (UPDATE {WebhookObjectCursor._meta.db_table} AS object_cursor "
    "SET applied_created_at = moves.created_at, applied_rank = moves.rank, "
    "applied_event_id = moves.event_id, updated_at = %(now)s "
    "FROM unnest(%(cursor_ids)s::bigint[], %(cursor_created)s::timestamptz[], "
    "%(cursor_ranks)s::smallint[], %(cursor_events)s::text[]) "
    "AS moves(id, created_at, rank, event_id) WHERE object_cursor.id = moves.id) "
    f"UPDATE {WebhookEvent._meta.db_table} AS event SET status = states.status, "
    "due_at = states.due_at, finished_at = states.finished_at, last_error = states.last_error, "
    "attempts_count = event.attempts_count + states.counted_now "
    "FROM unnest(%(event_ids)s::bigint[], %(statuses)s::text[], %(due_ats)s::timestamptz[], "
    "%(finished_ats)s::timestamptz[], %(last_errors)s::text[], %(counted_now)s::integer[]) "
    "AS states(id, status, due_at, finished_at, last_error, counted_now) "
    "WHERE event.id = states.id"
)


def _batch_finish(results: list[_Result], moved: list[WebhookObjectCursor]) -> None:
    """Every attempt's end, every event's new state and every cursor's move: one statement on
    PostgreSQL. An attempt already closed (by a drain that took the event over) stays as it
    was closed."""
    changed = [result for result in results if result.status]
    for result in changed:
        result.plan.event.status = result.status
    if connection.vendor != "postgresql":
        _batch_finish_portable(results, changed, moved)
        return
    with connection.cursor() as cursor:
        cursor.execute(
            _FINISH_SQL,
            {
                "attempt_ids": [result.plan.claim.attempt_pk for result in results],
                "outcomes": [str(result.outcome) for result in results],
                "actions": [str(result.action) for result in results],
                "errors": [result.error for result in results],
                "attempt_ends": [result.finished_at for result in results],
                "now": timezone.now(),
                "cursor_ids": [moved_cursor.pk for moved_cursor in moved],
                "cursor_created": [moved_cursor.applied_created_at for moved_cursor in moved],
                "cursor_ranks": [moved_cursor.applied_rank for moved_cursor in moved],
                "cursor_events": [moved_cursor.applied_event_id for moved_cursor in moved],
                "event_ids": [result.plan.event.pk for result in changed],
                "statuses": [result.status for result in changed],
                "due_ats": [result.due_at for result in changed],
                "finished_ats": [
                    None if result.status == Status.RETRYING else result.finished_at
                    for result in changed
                ],
                "last_errors": [result.last_error for result in changed],
                "counted_now": [result.counted_now for result in changed],
            },
        )


def _batch_finish_portable(
    results: list[_Result], changed: list[_Result], moved: list[WebhookObjectCursor]
) -> None:
    """The same, a statement per row, for databases without ``unnest`` (SQLite, the demo)."""
    for result in results:
        assert result.plan.claim.attempt_pk is not None
        WebhookAttempt.objects.filter(
            pk=result.plan.claim.attempt_pk, finished_at__isnull=True
        ).update(
            outcome=result.outcome,
            action=result.action,
            error=result.error,
            finished_at=result.finished_at,
        )
    for moved_cursor in moved:
        WebhookObjectCursor.objects.filter(pk=moved_cursor.pk).update(
            applied_created_at=moved_cursor.applied_created_at,
            applied_rank=moved_cursor.applied_rank,
            applied_event_id=moved_cursor.applied_event_id,
            updated_at=timezone.now(),
        )
    for result in changed:
        WebhookEvent.objects.filter(pk=result.plan.event.pk).update(
            status=result.status,
            due_at=result.due_at,
            finished_at=None if result.status == Status.RETRYING else result.finished_at,
            last_error=result.last_error,
            attempts_count=F("attempts_count") + result.counted_now,
        )


def _dead_letter(event_pk: int, *, reason: str) -> str:
    with transaction.atomic():
        event = event_lock(event_pk=event_pk)
        if event.status not in WebhookEvent.UNFINISHED:
            return str(event.status)
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
    return str(Status.DEAD)


OUT_OF_ATTEMPTS = "attempt limit reached: workers lost during attempts"


def _observe(results: list[_Result]) -> None:
    """Metrics and logs of a committed batch."""
    for result in results:
        event = result.plan.event
        if not result.status:
            continue
        metrics.PROCESSED.labels(event.event_type, result.outcome).inc()
        if result.outcome != Outcome.FAILED:
            metrics.PROCESSING_LAG.observe((result.finished_at - event.received_at).total_seconds())
            continue
        log_extra = {
            "stripe_event_id": event.stripe_event_id,
            "attempts": event.attempts_count + result.counted_now,
        }
        if result.status == Status.DEAD:
            metrics.DEAD_LETTERS.labels(event.event_type).inc()
            logger.error("webhook event dead-lettered after its retries", extra=log_extra)
        else:
            metrics.RETRIES.labels(event.event_type).inc()
            logger.warning("webhook event attempt failed; will retry", extra=log_extra)


def events_process(*, claims: list[Claim]) -> dict[int, str]:
    """Process claimed events, their attempts already recorded; each event's resulting status.

    Safe to run any number of times, concurrently too: the event row locks and statuses make
    every run after the first a no-op, and each handler's writes commit in the same
    transaction as its event's new status. An event whose attempt was closed meanwhile (a
    drain that found its lease run out took it over) is left to that drain.

    A batch first runs without savepoints (two round trips per event saved). If any of its
    events fails, the whole transaction rolls back and the batch runs again with a savepoint
    per event, so the failure is recorded and rolls back only its own writes; the other
    events' handlers then run a second time, which they allow (handlers are idempotent, and
    nothing of their first run was committed).
    """
    statuses: dict[int, str] = {}
    for claim in claims:
        if claim.attempt_pk is None:  # every attempt so far died with its worker
            statuses[claim.event_pk] = _dead_letter(claim.event_pk, reason=OUT_OF_ATTEMPTS)
    running = {claim.event_pk: claim for claim in claims if claim.attempt_pk is not None}
    if not running:
        return statuses
    try:
        results = _batch_run(running, statuses, savepoints=len(running) == 1)
    except _BatchNeedsSavepoints:
        results = _batch_run(running, statuses, savepoints=True)
    _observe(results)
    for result in results:
        statuses[result.plan.event.pk] = str(result.plan.event.status)
    return statuses


def _batch_run(
    running: dict[int, Claim], statuses: dict[int, str], *, savepoints: bool
) -> list[_Result]:
    """One transaction: lock, plan, apply, finish (module docstring)."""
    results: list[_Result] = []
    with transaction.atomic():
        plans = []
        for event, attempt_open in events_lock(
            event_pks=list(running),
            attempt_pks=[claim.attempt_pk for claim in running.values() if claim.attempt_pk],
        ):
            claim = running[event.pk]
            if not attempt_open:
                statuses[event.pk] = str(event.status)
                continue
            if event.status not in WebhookEvent.UNFINISHED:
                plan = _Plan(event=event, claim=claim)
                results.append(_Result(plan=plan, outcome=Outcome.ALREADY_FINISHED))
                continue
            plans.append(_plan(event, claim))
        cursors = object_cursors_lock(
            object_ids=[plan.cursor_key for plan in plans if plan.cursor_key]
        )
        applied_before = {key: cursor.applied_event_id for key, cursor in cursors.items()}
        results.extend(_apply(plan, cursors, savepoints=savepoints) for plan in plans)
        moved = [
            cursor
            for key, cursor in cursors.items()
            if cursor.applied_event_id != applied_before[key]
        ]
        _batch_finish(results, moved)
    return results


_ATTEMPT_START_SQL = (
    "WITH started AS ("  # noqa: S608 - table names from the models
    f"UPDATE {WebhookEvent._meta.db_table} SET attempts_count = attempts_count + 1, "
    "due_at = %(lease_until)s "
    "WHERE id = %(event_pk)s AND status IN ('pending', 'retrying') "
    "AND attempts_count < %(max_attempts)s RETURNING id, attempts_count) "
    f"INSERT INTO {WebhookAttempt._meta.db_table} "
    "(event_id, number, action, outcome, error, worker, task_id, started_at, isolated) "
    "SELECT id, attempts_count, 'handle', 'running', '', %(worker)s, %(task_id)s, %(now)s, true "
    "FROM started RETURNING id"
)


def _attempt_start(*, event_pk: int, worker: str, task_id: str) -> int | None:
    """Count the attempt on the event, lease it and record the attempt's start, committed at
    once (so an attempt whose worker dies is still counted and shown); None when the event is
    missing, finished, or out of attempts. One statement on PostgreSQL."""
    if connection.vendor != "postgresql":
        return _attempt_start_portable(event_pk=event_pk, worker=worker, task_id=task_id)
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _ATTEMPT_START_SQL,
            {
                "event_pk": event_pk,
                "max_attempts": settings.WEBHOOK_MAX_ATTEMPTS,
                "lease_until": now + timedelta(seconds=settings.WEBHOOK_CLAIM_SECONDS),
                "worker": worker[:255],
                "task_id": task_id[:255],
                "now": now,
            },
        )
        row = cursor.fetchone()
    return int(row[0]) if row else None


def _attempt_start_portable(*, event_pk: int, worker: str, task_id: str) -> int | None:
    """The same, for databases without data-modifying CTEs (SQLite, in the demo)."""
    now = timezone.now()
    with transaction.atomic():
        counted = WebhookEvent.objects.filter(
            pk=event_pk,
            status__in=WebhookEvent.UNFINISHED,
            attempts_count__lt=settings.WEBHOOK_MAX_ATTEMPTS,
        ).update(
            attempts_count=F("attempts_count") + 1,
            due_at=now + timedelta(seconds=settings.WEBHOOK_CLAIM_SECONDS),
        )
        if not counted:
            return None
        number = WebhookEvent.objects.values_list("attempts_count", flat=True).get(pk=event_pk)
        attempt = WebhookAttempt.objects.create(
            event_id=event_pk,
            number=number,
            worker=worker[:255],
            task_id=task_id[:255],
            started_at=now,
            isolated=True,
        )
    return attempt.pk


def event_process(*, event_pk: int, worker: str = "", task_id: str = "") -> str:
    """Process one stored event once in effect, alone; returns the event's resulting status.

    Its attempt is counted when it starts (committed before anything is applied), so a poison
    event that kills its worker reaches the dead-letter limit too.
    """
    attempt_pk = _attempt_start(event_pk=event_pk, worker=worker, task_id=task_id)
    if attempt_pk is None:
        current = WebhookEvent.objects.filter(pk=event_pk).values("status").first()
        if current is None or current["status"] not in WebhookEvent.UNFINISHED:
            return str(current["status"]) if current else "missing"
        return _dead_letter(event_pk, reason=OUT_OF_ATTEMPTS)
    claim = Claim(event_pk=event_pk, attempt_pk=attempt_pk, counted=True)
    return events_process(claims=[claim])[event_pk]
