"""Idempotency keys derived from our own stored operation ids.

The SDK would otherwise make a random key per call, which changes when a task re-runs and so
would charge twice. The key names the operation and the id of the row that records it, so
every retry of the same operation, in any process, sends the same key.
"""

from __future__ import annotations

import re

_SAFE = re.compile(r"^[A-Za-z0-9_.:\-]+$")
MAX_LENGTH = 255


def idempotency_key(operation: str, operation_id: str | int, *, attempt: int = 0) -> str:
    """``gavel:<operation>:<operation_id>[:<attempt>]``; ``attempt`` starts a fresh try
    deliberately (a new payment method after a decline), never implicitly."""
    key = f"gavel:{operation}:{operation_id}"
    if attempt:
        key = f"{key}:{attempt}"
    if not _SAFE.match(key) or len(key) > MAX_LENGTH:
        raise ValueError(f"Unsafe idempotency key: {key!r}")
    return key
