"""Backfill: list Stripe's events since the last one seen and ingest the missing ones through
the intake path (same envelope, same unique constraint, same processing). Stripe keeps 30 days
of events; use it after an outage or after Stripe disabled an endpoint or event destination.

Snapshot events come from ``/v1/events``; thin events (what an event destination delivers)
from ``/v2/core/events``, stored with source ``thin`` exactly as if they had been delivered.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from gavel.gateway.events import events_list, thin_events_list
from gavel.webhooks.envelope import NotAnEvent, envelope_read
from gavel.webhooks.models import WebhookEvent
from gavel.webhooks.selectors import event_last_seen_at, thin_event_last_seen_at
from gavel.webhooks.services.ingest import event_ingest

STRIPE_RETENTION = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class BackfillResult:
    since: datetime
    listed: int
    stored: int
    already_stored: int
    unreadable: int


def backfill_since_default(*, account: str | None, thin: bool = False) -> datetime:
    """The newest stored event of that source minus the overlap, within Stripe's 30 days."""
    oldest_available = timezone.now() - STRIPE_RETENTION
    last_seen = (
        thin_event_last_seen_at(account=account) if thin else event_last_seen_at(account=account)
    )
    if last_seen is None:
        return oldest_available
    overlap = timedelta(seconds=settings.WEBHOOK_BACKFILL_OVERLAP_SECONDS)
    return max(last_seen - overlap, oldest_available)


def _ingest_listed(
    items: Iterable[dict[str, Any]],
    *,
    since: datetime,
    source: WebhookEvent.Source,
    stamp: dict[str, str],
) -> BackfillResult:
    """Ingest what Stripe listed; ``stamp`` fills a field Stripe leaves out of listed events
    of a connected account (``account`` on snapshots, ``context`` on thin events)."""
    listed = stored = unreadable = 0
    for item in items:
        listed += 1
        for key, value in stamp.items():
            if not item.get(key):
                item[key] = value
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
        since=since,
        listed=listed,
        stored=stored,
        already_stored=listed - stored - unreadable,
        unreadable=unreadable,
    )


def events_backfill(*, since: datetime | None = None, account: str | None = None) -> BackfillResult:
    """Ingest every snapshot event Stripe lists from ``since`` (default: the last one seen)
    that is not stored yet. ``account`` backfills one connected account's events."""
    start = since or backfill_since_default(account=account)
    return _ingest_listed(
        events_list(created_gte=int(start.timestamp()), account=account),
        since=start,
        source=WebhookEvent.Source.CONNECT if account else WebhookEvent.Source.PLATFORM,
        stamp={"account": account} if account else {},
    )


def thin_events_backfill(
    *, since: datetime | None = None, account: str | None = None
) -> BackfillResult:
    """Ingest every thin (v2) event Stripe lists from ``since`` (default: the last thin event
    seen) that is not stored yet, with source ``thin``: processing fetches each related object
    as for a delivered notification. ``account`` backfills one connected account's events."""
    start = since or backfill_since_default(account=account, thin=True)
    return _ingest_listed(
        thin_events_list(created_gte=start, account=account),
        since=start,
        source=WebhookEvent.Source.THIN,
        stamp={"context": account} if account else {},
    )
