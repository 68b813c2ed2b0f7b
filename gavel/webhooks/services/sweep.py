"""The sweeper (beat, every WEBHOOK_SWEEP_INTERVAL_SECONDS): requests a drain when an event has
been due for longer than WEBHOOK_SWEEP_AFTER_SECONDS without being claimed (a drain request
lost with its web process or broker, a retry come due, a lease run out after a worker died),
closes attempts whose worker died, and publishes the backlog gauges."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Case, Min, Value, When
from django.utils import timezone

from gavel.webhooks import metrics
from gavel.webhooks.models import WebhookAttempt, WebhookEvent
from gavel.webhooks.services.drain import LOST_ERROR, drain_request

# An attempt still running this long after the task's hard time limit has lost its worker.
LOST_ATTEMPT_MARGIN_SECONDS = 60


@dataclass(frozen=True, slots=True)
class SweepResult:
    overdue: int  # events due too long; a drain was requested for them
    attempts_lost: int


def attempts_mark_lost(*, older_than_seconds: float | None = None) -> int:
    """Close attempts whose worker died mid-way (started before the cut-off, never finished):
    ``lost`` if the attempt ran alone, ``abandoned`` if it ran in a batch. The next drain to
    claim their events closes them sooner; this catches those no drain claims again."""
    if older_than_seconds is None:
        older_than_seconds = settings.CELERY_TASK_TIME_LIMIT + LOST_ATTEMPT_MARGIN_SECONDS
    now = timezone.now()
    return WebhookAttempt.objects.filter(
        finished_at__isnull=True, started_at__lt=now - timedelta(seconds=older_than_seconds)
    ).update(
        outcome=Case(
            When(isolated=True, then=Value(WebhookAttempt.Outcome.LOST)),
            default=Value(WebhookAttempt.Outcome.ABANDONED),
        ),
        error=LOST_ERROR,
        finished_at=now,
    )


def _gauges_publish() -> None:
    now = timezone.now()
    unfinished = WebhookEvent.objects.filter(status__in=WebhookEvent.UNFINISHED)
    oldest = unfinished.aggregate(oldest=Min("received_at"))["oldest"]
    metrics.UNFINISHED.set(unfinished.count())
    metrics.OLDEST_UNFINISHED_AGE.set((now - oldest).total_seconds() if oldest else 0)
    metrics.DEAD_EVENTS.set(WebhookEvent.objects.filter(status=WebhookEvent.Status.DEAD).count())


def events_sweep(*, lost_after_seconds: float | None = None) -> SweepResult:
    """Request a drain if events are overdue; close lost attempts; publish the gauges."""
    lost = attempts_mark_lost(older_than_seconds=lost_after_seconds)
    cutoff = timezone.now() - timedelta(seconds=settings.WEBHOOK_SWEEP_AFTER_SECONDS)
    overdue = WebhookEvent.objects.filter(
        status__in=WebhookEvent.UNFINISHED, due_at__lte=cutoff
    ).count()
    if overdue:
        drain_request(force=True)
        metrics.SWEEP_DRAINS.inc()
    _gauges_publish()
    return SweepResult(overdue=overdue, attempts_lost=lost)
