"""Celery signal handlers: request id into every published task, and task metrics."""

from __future__ import annotations

import time
from typing import Any

from celery import signals

from gavel.common.context import request_id_current, request_id_var, task_id_var
from gavel.observability.metrics import TASK_DURATION, TASKS

_started: dict[str, float] = {}
_tokens: dict[str, tuple[Any, Any]] = {}


def _before_publish(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is not None and not headers.get("gavel_request_id"):
        request_id = request_id_current()
        if request_id:
            headers["gavel_request_id"] = request_id


def _prerun(task_id: str = "", task: Any = None, **_: Any) -> None:
    request_id = getattr(getattr(task, "request", None), "gavel_request_id", None)
    _tokens[task_id] = (request_id_var.set(request_id), task_id_var.set(task_id))
    _started[task_id] = time.perf_counter()


def _postrun(task_id: str = "", task: Any = None, state: str | None = None, **_: Any) -> None:
    name = getattr(task, "name", "unknown")
    started = _started.pop(task_id, None)
    if started is not None:
        TASK_DURATION.labels(name).observe(time.perf_counter() - started)
    TASKS.labels(name, (state or "unknown").lower()).inc()
    tokens = _tokens.pop(task_id, None)
    if tokens is not None:
        request_id_var.reset(tokens[0])
        task_id_var.reset(tokens[1])


def _retry(request: Any = None, **_: Any) -> None:
    TASKS.labels(getattr(request, "task", "unknown"), "retry").inc()


def connect() -> None:
    signals.before_task_publish.connect(_before_publish, weak=False)
    signals.task_prerun.connect(_prerun, weak=False)
    signals.task_postrun.connect(_postrun, weak=False)
    signals.task_retry.connect(_retry, weak=False)
