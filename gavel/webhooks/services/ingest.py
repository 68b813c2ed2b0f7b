"""Storing a verified event exactly once, then asking for a drain to process it.

The event row is its own outbox: it is stored due at once, and stays due until processed. The
drain request (``services.drain``) is published through the common outbox; if it is lost, the
sweeper requests one for events due too long.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.db.models import F
from django.utils import timezone

from gavel.webhooks import metrics
from gavel.webhooks.envelope import Envelope
from gavel.webhooks.models import WebhookEvent
from gavel.webhooks.services.drain import drain_request

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


def event_ingest(
    *,
    envelope: Envelope,
    body: str,
    source: WebhookEvent.Source,
    ignored_reason: str = "",
    endpoint: str = "",
) -> IngestResult:
    """Store the event unless its id is already stored, then request a drain.

    One ``INSERT ... ON CONFLICT DO NOTHING`` against the unique event id decides, so
    concurrent deliveries of one event store it once; at intake (autocommit) that one statement
    is the commit, done before Stripe gets its 200. ``ignored_reason`` stores the event as
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
        now if unfinished else None,
        ignored_reason,
        now,
        None if unfinished else now,
    )
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_SQL, values)
        row = cursor.fetchone()
    label = endpoint or source
    if row is None:
        WebhookEvent.objects.filter(stripe_event_id=envelope.event_id).update(
            duplicate_deliveries=F("duplicate_deliveries") + 1
        )
        metrics.DUPLICATES.labels(label).inc()
        return IngestResult(event_pk=None, created=False)
    metrics.RECEIVED.labels(label).inc()
    if unfinished:
        drain_request()
    return IngestResult(event_pk=int(row[0]), created=True)
