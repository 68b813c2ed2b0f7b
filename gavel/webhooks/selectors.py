"""Reads of the webhook pipeline."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Max, QuerySet

from gavel.webhooks.models import WebhookEvent


def event_last_seen_at(*, account: str | None) -> datetime | None:
    """When Stripe created the newest stored event of the platform, or of one account."""
    events = WebhookEvent.objects.exclude(source=WebhookEvent.Source.THIN)
    events = events.filter(account=account) if account else events.filter(account="")
    newest: datetime | None = events.aggregate(newest=Max("stripe_created_at"))["newest"]
    return newest


def thin_event_last_seen_at(*, account: str | None) -> datetime | None:
    """When Stripe created the newest stored thin (v2) event of the platform, or of one
    account (its ``context``)."""
    events = WebhookEvent.objects.filter(source=WebhookEvent.Source.THIN, account=account or "")
    newest: datetime | None = events.aggregate(newest=Max("stripe_created_at"))["newest"]
    return newest


def events_replayable(
    *,
    stripe_event_ids: list[str] | None = None,
    statuses: list[str] | None = None,
    event_type: str | None = None,
    since: datetime | None = None,
) -> QuerySet[WebhookEvent]:
    """Dead or ignored events matching every given filter, oldest first."""
    events = WebhookEvent.objects.filter(status__in=statuses or list(WebhookEvent.REPLAYABLE))
    if stripe_event_ids:
        events = events.filter(stripe_event_id__in=stripe_event_ids)
    if event_type:
        events = events.filter(event_type=event_type)
    if since is not None:
        events = events.filter(received_at__gte=since)
    return events.order_by("stripe_created_at", "stripe_event_id")
