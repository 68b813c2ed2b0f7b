"""Replaying dead-lettered and ignored events (admin action, ``webhooks_replay`` command).

Replay is safe because handlers are idempotent and a replayed event goes through the same
ordering rules: an event older than what its object already shows is superseded.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from gavel.webhooks import metrics
from gavel.webhooks.models import WebhookEvent
from gavel.webhooks.services.drain import drain_request


def events_replay(*, event_pks: Iterable[int]) -> int:
    """Put each replayable event (dead or ignored) back to pending, due now, with a fresh
    attempt budget, and request a drain; returns how many were replayed. Others are left
    untouched."""
    wanted = list(event_pks)
    now = timezone.now()
    with transaction.atomic():
        replayed = list(
            WebhookEvent.objects.select_for_update()
            .filter(pk__in=wanted, status__in=WebhookEvent.REPLAYABLE)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        WebhookEvent.objects.filter(pk__in=replayed).update(
            status=WebhookEvent.Status.PENDING,
            attempts_count=0,
            due_at=now,
            finished_at=None,
        )
        if replayed:
            drain_request(force=True)
    metrics.REPLAYS.inc(len(replayed))
    return len(replayed)


def event_replay(*, event_pk: int) -> bool:
    return events_replay(event_pks=[event_pk]) == 1
