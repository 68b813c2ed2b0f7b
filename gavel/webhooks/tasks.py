"""Celery tasks of the webhook pipeline (queue ``webhooks``); each calls one service."""

from __future__ import annotations

import os
import socket
from typing import Any

from celery import shared_task

from gavel.webhooks.services.processing import event_process
from gavel.webhooks.services.sweep import events_sweep


def _worker_name(task: Any) -> str:
    hostname = getattr(task.request, "hostname", None) or socket.gethostname()
    return f"{hostname}:{os.getpid()}"


@shared_task(name="gavel.webhooks.tasks.webhook_event_process", bind=True, acks_late=True)
def webhook_event_process(self: Any, event_pk: int) -> str:
    return event_process(
        event_pk=event_pk, worker=_worker_name(self), task_id=str(self.request.id or "")
    )


@shared_task(name="gavel.webhooks.tasks.webhook_events_sweep", acks_late=True)
def webhook_events_sweep() -> int:
    return events_sweep().enqueued
