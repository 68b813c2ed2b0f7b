"""Live updates: auction events over Redis pub/sub, streamed to the apps as server-sent events.

Publishing is best effort and happens after commit: the GET answers (with ETags) are the
truth, and a client that missed an event re-reads the auction when it reconnects.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import redis
from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

_client_lock = threading.Lock()
_client: redis.Redis | None = None


def redis_client() -> redis.Redis:
    global _client
    with _client_lock:
        if _client is None:
            _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
        return _client


def auction_channel(auction_id: int) -> str:
    return f"{settings.AUCTIONS_STREAM_CHANNEL_PREFIX}{auction_id}"


def auction_event_publish(*, auction_id: int, event_type: str, data: dict[str, Any]) -> bool:
    """Publish now; False (logged) when Redis is unavailable."""
    message = json.dumps({"type": event_type, "data": data}, default=str)
    try:
        redis_client().publish(auction_channel(auction_id), message)
    except redis.RedisError as error:
        logger.warning(
            "auction live update not published",
            extra={"auction_id": auction_id, "error": repr(error)},
        )
        return False
    return True


def auction_event_publish_on_commit(
    *, auction_id: int, event_type: str, data: dict[str, Any]
) -> None:
    transaction.on_commit(
        lambda: auction_event_publish(auction_id=auction_id, event_type=event_type, data=data)
    )


def sse_format(*, event_type: str, data: dict[str, Any], event_id: str | None = None) -> bytes:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event_type}")
    lines.append(f"data: {json.dumps(data, default=str, separators=(',', ':'))}")
    return ("\n".join(lines) + "\n\n").encode()


def auction_event_stream(
    *,
    auction_id: int,
    snapshot_read: Callable[[], dict[str, Any]],
    max_seconds: float,
    keepalive_seconds: float,
) -> Iterator[bytes]:
    """Yield a snapshot, then every published event, for at most ``max_seconds``.

    The snapshot is read once Redis has confirmed the subscription (when the response is first
    read, not when the view answered), so an event published between the two is either in the
    snapshot or delivered after it, never lost; a keep-alive comment goes out when the line is
    quiet.
    """
    pubsub = redis_client().pubsub()  # type: ignore[no-untyped-call]
    try:
        pubsub.subscribe(auction_channel(auction_id))
        pubsub.get_message(timeout=5)  # Redis's confirmation of the subscription
        snapshot = snapshot_read()
        yield b"retry: 2000\n\n"
        yield sse_format(
            event_type="snapshot", data=snapshot, event_id=str(snapshot.get("version", ""))
        )
        deadline = time.monotonic() + max_seconds
        last_sent = time.monotonic()
        while (remaining := deadline - time.monotonic()) > 0:
            message = pubsub.get_message(timeout=min(remaining, 0.5))
            if message is not None and message.get("type") == "message":
                payload = json.loads(message["data"])
                data = payload.get("data", {})
                yield sse_format(
                    event_type=str(payload.get("type", "message")),
                    data=data,
                    event_id=str(data.get("version", "")) or None,
                )
                last_sent = time.monotonic()
            elif time.monotonic() - last_sent >= keepalive_seconds:
                yield b": keep-alive\n\n"
                last_sent = time.monotonic()
        yield sse_format(event_type="end", data={"reason": "stream_limit_reached"})
    finally:
        pubsub.close()
