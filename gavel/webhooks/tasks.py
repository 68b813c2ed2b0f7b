"""Celery tasks of the webhook pipeline (queue ``webhooks``); each calls one service."""

from __future__ import annotations

import os
import socket
from typing import Any

from celery import shared_task

from gavel.webhooks.services.drain import events_drain
from gavel.webhooks.services.sweep import events_sweep


def _worker_name(task: Any) -> str:
    hostname = getattr(task.request, "hostname", None) or socket.gethostname()
    return f"{hostname}:{os.getpid()}"


@shared_task(name="gavel.webhooks.tasks.webhook_events_drain", bind=True, acks_late=True)
def webhook_events_drain(self: Any) -> int:
    return events_drain(worker=_worker_name(self), task_id=str(self.request.id or ""))


@shared_task(name="gavel.webhooks.tasks.webhook_events_sweep", acks_late=True)
def webhook_events_sweep() -> int:
    return events_sweep().overdue
