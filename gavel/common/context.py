"""Per-request and per-task context (request id, user id, task id) carried in contextvars."""

from __future__ import annotations

import secrets
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("gavel_request_id", default=None)
user_id_var: ContextVar[int | None] = ContextVar("gavel_user_id", default=None)
task_id_var: ContextVar[str | None] = ContextVar("gavel_task_id", default=None)


def request_id_new() -> str:
    return f"req_{secrets.token_hex(12)}"


def request_id_current() -> str | None:
    return request_id_var.get()
