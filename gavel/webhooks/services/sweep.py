"""The sweeper (beat, every WEBHOOK_SWEEP_INTERVAL_SECONDS): enqueue again every event stored
but not finished by its ``due_at`` (first enqueue lost, retry due, worker died), mark attempts
whose worker died as lost, and publish the backlog gauges."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from gavel.webhooks import metrics
from gavel.webhooks.models import WebhookAttempt, WebhookEvent
from gavel.webhooks.services.ingest import event_enqueue

# An attempt still running this long after the task's hard time limit has lost its worker.
LOST_ATTEMPT_MARGIN_SECONDS = 60


@dataclass(frozen=True, slots=True)
class SweepResult:
    enqueued: int
    attempts_lost: int


def attempts_mark_lost(*, older_than_seconds: float | None = None) -> int:
    """Close attempts whose worker died mid-way (started before the cut-off, never finished)."""
    if older_than_seconds is None:
        older_than_seconds = settings.CELERY_TASK_TIME_LIMIT + LOST_ATTEMPT_MARGIN_SECONDS
    now = timezone.now()
    return WebhookAttempt.objects.filter(
        finished_at__isnull=True, started_at__lt=now - timedelta(seconds=older_than_seconds)
    ).update(
        outcome=WebhookAttempt.Outcome.LOST,
        error="the worker stopped before the attempt ended",
        finished_at=now,
    )


def _gauges_publish() -> None:
    now = timezone.now()
    unfinished = WebhookEvent.objects.filter(status__in=WebhookEvent.UNFINISHED)
    oldest = unfinished.aggregate(oldest=Min("received_at"))["oldest"]
    metrics.UNFINISHED.set(unfinished.count())
    metrics.OLDEST_UNFINISHED_AGE.set((now - oldest).total_seconds() if oldest else 0)
    metrics.DEAD_EVENTS.set(WebhookEvent.objects.filter(status=WebhookEvent.Status.DEAD).count())


def events_sweep(
    *, batch_size: int | None = None, lost_after_seconds: float | None = None
) -> SweepResult:
    """Enqueue every unfinished event whose ``due_at`` has passed and re-arm it.

    Rows locked by a worker that is processing them right now are skipped (SKIP LOCKED), and
    so are rows another sweeper holds.
    """
    lost = attempts_mark_lost(older_than_seconds=lost_after_seconds)
    now = timezone.now()
    limit = batch_size or settings.WEBHOOK_SWEEP_BATCH_SIZE
    with transaction.atomic():
        due = list(
            WebhookEvent.objects.select_for_update(skip_locked=True)
            .filter(status__in=WebhookEvent.UNFINISHED, due_at__lte=now)
            .order_by("due_at")
            .values_list("pk", flat=True)[:limit]
        )
        if due:
            WebhookEvent.objects.filter(pk__in=due).update(
                due_at=now + timedelta(seconds=settings.WEBHOOK_SWEEP_AFTER_SECONDS)
            )
        for event_pk in due:
            event_enqueue(event_pk=event_pk)
    enqueued = len(due)
    metrics.SWEEP_ENQUEUED.inc(enqueued)
    _gauges_publish()
    return SweepResult(enqueued=enqueued, attempts_lost=lost)
