"""Storing a verified event exactly once, with its processing enqueued through the outbox in
the same transaction (published after commit; the outbox sweeper publishes what a dead process
or a down broker left behind)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from gavel.common.outbox import outbox_enqueue
from gavel.webhooks import metrics
from gavel.webhooks.envelope import Envelope
from gavel.webhooks.models import WebhookEvent

PROCESS_TASK = "gavel.webhooks.tasks.webhook_event_process"
QUEUE = "webhooks"

_COLUMNS = (
    "stripe_event_id",
    "source",
    "event_type",
    "api_version",
    "livemode",
    "account",
    "object_id",
    "object_type",
    "stripe_created_at",
    "payload",
    "status",
    "attempts_count",
    "duplicate_deliveries",
    "due_at",
    "last_error",
    "received_at",
    "finished_at",
)
_INSERT_SQL = (
    f"INSERT INTO {WebhookEvent._meta.db_table} ({', '.join(_COLUMNS)}) "  # noqa: S608 - constants
    f"VALUES ({', '.join(['%s'] * len(_COLUMNS))}) "
    "ON CONFLICT (stripe_event_id) DO NOTHING RETURNING id"
)


@dataclass(frozen=True, slots=True)
class IngestResult:
    event_pk: int | None  # None: a duplicate delivery
    created: bool


def event_enqueue(*, event_pk: int) -> None:
    """Enqueue the processing of one stored event through the outbox: call it inside the
    transaction that stores or re-arms the event; it is published after commit, and by the
    outbox sweeper if this process dies first or the broker is down."""
    outbox_enqueue(task_name=PROCESS_TASK, kwargs={"event_pk": event_pk}, queue=QUEUE)


def event_ingest(
    *,
    envelope: Envelope,
    body: str,
    source: WebhookEvent.Source,
    ignored_reason: str = "",
    endpoint: str = "",
) -> IngestResult:
    """Store the event unless its id is already stored, then enqueue it after commit.

    One ``INSERT ... ON CONFLICT DO NOTHING`` against the unique event id decides, so
    concurrent deliveries of one event store it once. ``ignored_reason`` stores the event as
    ignored (kept for audit, never processed).
    """
    now = timezone.now()
    unfinished = not ignored_reason
    values = (
        envelope.event_id,
        source,
        envelope.event_type,
        envelope.api_version,
        envelope.livemode,
        envelope.account,
        envelope.object_id,
        envelope.object_type,
        envelope.created_at,
        body,
        WebhookEvent.Status.PENDING if unfinished else WebhookEvent.Status.IGNORED,
        0,
        0,
        now + timedelta(seconds=settings.WEBHOOK_SWEEP_AFTER_SECONDS) if unfinished else None,
        ignored_reason,
        now,
        None if unfinished else now,
    )
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_INSERT_SQL, values)
            row = cursor.fetchone()
        if row is None:
            WebhookEvent.objects.filter(stripe_event_id=envelope.event_id).update(
                duplicate_deliveries=F("duplicate_deliveries") + 1
            )
        elif unfinished:
            event_enqueue(event_pk=int(row[0]))
    label = endpoint or source
    if row is None:
        metrics.DUPLICATES.labels(label).inc()
        return IngestResult(event_pk=None, created=False)
    metrics.RECEIVED.labels(label).inc()
    return IngestResult(event_pk=int(row[0]), created=True)
