"""Idempotency records: what a POST with an ``Idempotency-Key`` left behind."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class IdemEntry:
    """Keyed by (API key, account, idempotency key); replayed while younger than the TTL."""

    fingerprint: str
    path: str
    created: int
    in_flight: bool = True
    status: int = 0
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
