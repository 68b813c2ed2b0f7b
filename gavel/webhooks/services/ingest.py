"""Storing verified events exactly once, then asking for a drain to process them.

The event row is its own outbox: it is stored due at once, and stays due until processed. The
drain request (``services.drain``) is published through the common outbox; if it is lost, the
sweeper requests one for events due too long.

``events_store`` stores a batch in one statement (the intake writer's group commit, see
``gavel/webhooks/intake_writer.py``); ``event_ingest`` stores one event (the Django views,
backfill, tests). Both run the same SQL.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.db import connection
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
_TABLE = WebhookEvent._meta.db_table


def _placeholders(first: int, count: int, *, numbered: bool) -> str:
    """``%s, %s`` (client-side formatting) or ``$1, $2`` (PostgreSQL's own: the intake writer's
    raw cursor, so psycopg does not parse a statement with hundreds of parameters each time)."""
    if numbered:
        return ", ".join(f"${number}" for number in range(first, first + count))
    return ", ".join(["%s"] * count)


@cache
def _insert_sql(row_count: int, *, numbered: bool = False) -> str:
    width = len(_COLUMNS)
    rows = ", ".join(
        f"({_placeholders(1 + row * width, width, numbered=numbered)})" for row in range(row_count)
    )
    return (
        f"INSERT INTO {_TABLE} ({', '.join(_COLUMNS)}) VALUES {rows} "  # noqa: S608 - constants
        "ON CONFLICT (stripe_event_id) DO NOTHING RETURNING id, stripe_event_id"
    )


@cache
def _duplicates_sql(id_count: int, *, numbered: bool = False) -> str:
    pairs = ", ".join(
        f"({_placeholders(1 + 2 * pair, 2, numbered=numbered)}::integer)"
        for pair in range(id_count)
    )
    return (
        f"UPDATE {_TABLE} SET duplicate_deliveries = duplicate_deliveries + counted.deliveries "  # noqa: S608
        f"FROM (VALUES {pairs}) AS counted (stripe_event_id, deliveries) "
        f"WHERE {_TABLE}.stripe_event_id = counted.stripe_event_id"
    )


@dataclass(frozen=True, slots=True)
class EventRow:
    """One verified delivery, ready to store."""

    envelope: Envelope
    body: str
    source: WebhookEvent.Source
    ignored_reason: str = ""  # non-empty: stored as ignored (kept for audit, never processed)
    endpoint: str = ""  # the metrics label; the source when empty

    def values(self, now: datetime) -> tuple[Any, ...]:
        envelope, unfinished = self.envelope, not self.ignored_reason
        return (
            envelope.event_id,
            str(self.source),
            envelope.event_type,
            envelope.api_version,
            envelope.livemode,
            envelope.account,
            envelope.object_id,
            envelope.object_type,
            envelope.created_at,
            self.body,
            str(WebhookEvent.Status.PENDING if unfinished else WebhookEvent.Status.IGNORED),
            0,
            0,
            now if unfinished else None,
            self.ignored_reason,
            now,
            None if unfinished else now,
        )


@dataclass(frozen=True, slots=True)
class IngestResult:
    event_pk: int | None  # None: a duplicate delivery
    created: bool


@dataclass(frozen=True, slots=True)
class StorePlan:
    """The statements that store a batch (``events_store`` and the async intake writer run the
    same ones): the INSERT, then for the rows it reports stored, ``results``."""

    insert_sql: str
    insert_parameters: list[Any]
    first_index: dict[str, int]  # event id -> the first row of the batch carrying it
    numbered: bool  # $n placeholders (a raw cursor) rather than %s

    def results(
        self, rows: Sequence[EventRow], stored: dict[str, int]
    ) -> tuple[list[IngestResult], tuple[str, list[Any]] | None]:
        """Each row's result, given ``stored`` (event id -> pk, from the INSERT's RETURNING),
        and the UPDATE that counts the duplicate deliveries (None when there is none)."""
        results: list[IngestResult] = []
        duplicates: Counter[str] = Counter()
        for index, row in enumerate(rows):
            event_id = row.envelope.event_id
            if self.first_index[event_id] == index and event_id in stored:
                results.append(IngestResult(event_pk=stored[event_id], created=True))
            else:
                results.append(IngestResult(event_pk=None, created=False))
                duplicates[event_id] += 1
        if not duplicates:
            return results, None
        counted = sorted(duplicates.items())
        parameters: list[Any] = [value for pair in counted for value in pair]
        return results, (_duplicates_sql(len(counted), numbered=self.numbered), parameters)


def store_plan(rows: Sequence[EventRow], now: datetime, *, numbered: bool = False) -> StorePlan:
    """One ``INSERT ... ON CONFLICT DO NOTHING`` against the unique event id for the batch: the
    first row of each event id, in event-id order (two batches that share ids then wait on each
    other in the same order and never deadlock)."""
    first_index: dict[str, int] = {}
    for index, row in enumerate(rows):
        first_index.setdefault(row.envelope.event_id, index)
    ordered = sorted(first_index.items())
    parameters: list[Any] = []
    for _, index in ordered:
        parameters.extend(rows[index].values(now))
    return StorePlan(
        _insert_sql(len(ordered), numbered=numbered), parameters, first_index, numbered
    )


def events_store(rows: Sequence[EventRow]) -> list[IngestResult]:
    """Store each row unless its event id is already stored; one result per row, in order.

    The unique constraint decides (``store_plan``), so concurrent deliveries of one event store
    it once; within a batch the first row of an id is stored and the others are duplicates,
    counted on the stored event by one more statement. Call it in autocommit (the INSERT is then
    the commit) or in a transaction the caller commits; no drain is requested here.
    """
    if not rows:
        return []
    plan = store_plan(rows, timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(plan.insert_sql, plan.insert_parameters)
        stored = {event_id: int(pk) for pk, event_id in cursor.fetchall()}
        results, duplicates_update = plan.results(rows, stored)
        if duplicates_update is not None:
            cursor.execute(*duplicates_update)
    return results


def ingest_results_record(rows: Sequence[EventRow], results: Sequence[IngestResult]) -> bool:
    """Count the stored batch in the metrics; True when an unfinished event was stored (a drain
    must be requested)."""
    drain_needed = False
    for row, result in zip(rows, results, strict=True):
        label = row.endpoint or row.source
        if result.created:
            metrics.RECEIVED.labels(label).inc()
            drain_needed = drain_needed or not row.ignored_reason
        else:
            metrics.DUPLICATES.labels(label).inc()
    return drain_needed


def event_ingest(
    *,
    envelope: Envelope,
    body: str,
    source: WebhookEvent.Source,
    ignored_reason: str = "",
    endpoint: str = "",
) -> IngestResult:
    """Store the event unless its id is already stored (``events_store``), then request a
    drain. At intake (autocommit) the INSERT is the commit, done before Stripe gets its 200.
    ``ignored_reason`` stores the event as ignored (kept for audit, never processed)."""
    rows = [
        EventRow(
            envelope=envelope,
            body=body,
            source=source,
            ignored_reason=ignored_reason,
            endpoint=endpoint,
        )
    ]
    results = events_store(rows)
    if ingest_results_record(rows, results):
        drain_request()
    return results[0]
