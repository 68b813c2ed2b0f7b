"""Row locks of the webhook pipeline, one home. Lock order: the event row, then the object."""

from __future__ import annotations

from datetime import UTC, datetime

from gavel.webhooks.models import WebhookEvent, WebhookObjectCursor

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def event_lock(*, event_pk: int) -> WebhookEvent:
    """The event row, locked until the end of the transaction."""
    return WebhookEvent.objects.select_for_update().get(pk=event_pk)


def object_cursor_lock(*, object_id: str) -> WebhookObjectCursor:
    """The ordering cursor of one Stripe object, created if new, locked until the end of the
    transaction: every event about the object is applied under this lock, one at a time."""
    # INSERT ... ON CONFLICT DO NOTHING on PostgreSQL (and SQLite, for the demo).
    WebhookObjectCursor.objects.bulk_create(
        [WebhookObjectCursor(object_id=object_id, applied_created_at=_EPOCH, applied_event_id="")],
        ignore_conflicts=True,
    )
    return WebhookObjectCursor.objects.select_for_update().get(object_id=object_id)
