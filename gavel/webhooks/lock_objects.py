"""Row locks of the webhook pipeline, one home. Lock order: the event rows (by primary key),
then the objects' cursors (by key); every path takes them in this order, so two drains never
deadlock on them."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import connection
from django.db.models import Exists, OuterRef
from django.utils import timezone

from gavel.webhooks.models import WebhookAttempt, WebhookEvent, WebhookObjectCursor

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR_ROW = "(%s, %s, 0, '', %s)"


def event_lock(*, event_pk: int) -> WebhookEvent:
    """The event row, locked until the end of the transaction."""
    return WebhookEvent.objects.select_for_update().get(pk=event_pk)


def events_lock(*, event_pks: list[int], attempt_pks: list[int]) -> list[tuple[WebhookEvent, bool]]:
    """The events, locked in primary-key order until the end of the transaction, each with
    whether its attempt (one of ``attempt_pks``) is still open: closed means a drain that found
    the lease run out took the event over."""
    open_attempt = WebhookAttempt.objects.filter(
        pk__in=attempt_pks, event_id=OuterRef("pk"), finished_at__isnull=True
    )
    events = (
        WebhookEvent.objects.select_for_update()
        .filter(pk__in=event_pks)
        .annotate(attempt_open=Exists(open_attempt))
        .order_by("pk")
    )
    return [(event, bool(event.attempt_open)) for event in events]


def _aware(value: datetime | str) -> datetime:
    """A raw row skips the field's converter: SQLite (the demo) hands back text or a naive
    datetime, PostgreSQL an aware one. Stored values are UTC."""
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


def object_cursors_lock(*, object_ids: list[str]) -> dict[str, WebhookObjectCursor]:
    """The ordering cursors of these Stripe objects (keys), created if new, locked until the
    end of the transaction: every event about an object is applied under its cursor's lock, one
    at a time.

    One statement, rows in key order (so two batches lock their common cursors in the same
    order): the no-op ``DO UPDATE`` of an existing row takes its lock and returns it.
    """
    keys = sorted(set(object_ids))
    if not keys:
        return {}
    table = WebhookObjectCursor._meta.db_table
    now = timezone.now()
    params: list[str | datetime] = []
    for key in keys:
        params.extend((key, _EPOCH, now))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} "  # noqa: S608 - table name from the model
            "(object_id, applied_created_at, applied_rank, applied_event_id, updated_at) "
            f"VALUES {', '.join([_CURSOR_ROW] * len(keys))} "
            "ON CONFLICT (object_id) DO UPDATE SET object_id = EXCLUDED.object_id "
            "RETURNING id, object_id, applied_created_at, applied_rank, applied_event_id",
            params,
        )
        rows = cursor.fetchall()
    return {
        row[1]: WebhookObjectCursor(
            id=row[0],
            object_id=row[1],
            applied_created_at=_aware(row[2]),
            applied_rank=row[3],
            applied_event_id=row[4],
        )
        for row in rows
    }
