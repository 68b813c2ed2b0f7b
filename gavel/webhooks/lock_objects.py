"""Row locks of the webhook pipeline, one home. Lock order: the event row, then the object."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import connection
from django.utils import timezone

from gavel.webhooks.models import WebhookEvent, WebhookObjectCursor

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def event_lock(*, event_pk: int) -> WebhookEvent:
    """The event row, locked until the end of the transaction."""
    return WebhookEvent.objects.select_for_update().get(pk=event_pk)


def _aware(value: datetime | str) -> datetime:
    """A raw row skips the field's converter: SQLite (the demo) hands back text or a naive
    datetime, PostgreSQL an aware one. Stored values are UTC."""
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


def object_cursor_lock(*, object_id: str) -> WebhookObjectCursor:
    """The ordering cursor of one Stripe object, created if new, locked until the end of the
    transaction: every event about the object is applied under this lock, one at a time.

    One statement: the no-op ``DO UPDATE`` of an existing row takes its lock and returns it.
    """
    table = WebhookObjectCursor._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} "  # noqa: S608 - table name from the model
            "(object_id, applied_created_at, applied_rank, applied_event_id, updated_at) "
            "VALUES (%s, %s, 0, '', %s) "
            "ON CONFLICT (object_id) DO UPDATE SET object_id = EXCLUDED.object_id "
            "RETURNING id, applied_created_at, applied_rank, applied_event_id",
            [object_id, _EPOCH, timezone.now()],
        )
        row = cursor.fetchone()
    assert row is not None
    return WebhookObjectCursor(
        id=row[0],
        object_id=object_id,
        applied_created_at=_aware(row[1]),
        applied_rank=row[2],
        applied_event_id=row[3],
    )
