"""Backfill: list Stripe's events since the last one seen and ingest the missing ones through
the intake path (same envelope, same unique constraint, same processing). Stripe keeps 30 days
of events; use it after an outage or after Stripe disabled an endpoint."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from gavel.gateway.events import events_list
from gavel.webhooks.envelope import NotAnEvent, envelope_read
from gavel.webhooks.models import WebhookEvent
from gavel.webhooks.selectors import event_last_seen_at
from gavel.webhooks.services.ingest import event_ingest

STRIPE_RETENTION = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class BackfillResult:
    since: datetime
    listed: int
    stored: int
    already_stored: int
    unreadable: int


def backfill_since_default(*, account: str | None) -> datetime:
    """The newest stored event of that source minus the overlap, within Stripe's 30 days."""
    oldest_available = timezone.now() - STRIPE_RETENTION
    last_seen = event_last_seen_at(account=account)
    if last_seen is None:
        return oldest_available
    overlap = timedelta(seconds=settings.WEBHOOK_BACKFILL_OVERLAP_SECONDS)
    return max(last_seen - overlap, oldest_available)


def events_backfill(*, since: datetime | None = None, account: str | None = None) -> BackfillResult:
    """Ingest every event Stripe lists from ``since`` (default: the last one seen) that is not
    stored yet. ``account`` backfills one connected account's events."""
    start = since or backfill_since_default(account=account)
    source = WebhookEvent.Source.CONNECT if account else WebhookEvent.Source.PLATFORM
    listed = stored = unreadable = 0
    for item in events_list(created_gte=int(start.timestamp()), account=account):
        listed += 1
        if account and not item.get("account"):
            item["account"] = account
        try:
            envelope = envelope_read(item)
        except NotAnEvent:
            unreadable += 1
            continue
        result = event_ingest(
            envelope=envelope, body=json.dumps(item), source=source, endpoint="backfill"
        )
        stored += int(result.created)
    return BackfillResult(
        since=start,
        listed=listed,
        stored=stored,
        already_stored=listed - stored - unreadable,
        unreadable=unreadable,
    )
