"""Live updates: server-sent events fed by Redis pub/sub."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from rest_framework.test import APIClient

from conftest import bearer
from gavel.auctions import live
from gavel.auctions.services.bidding import bid_place
from gavel.auctions.services.closing import auction_close
from gavel.auctions.tests.factories import auction_make, user_make

pytestmark = pytest.mark.django_db


def _events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in raw.decode().split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != ":"
        )
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_stream_sends_a_snapshot_then_each_bid_and_the_close(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.AUCTIONS_STREAM_KEEPALIVE_SECONDS = 0
    settings.AUCTIONS_HANDOFF_TASK = ""
    auction = auction_make()
    client = APIClient()
    client.credentials(**bearer(user_make()))
    response = client.get(f"/api/v1/auctions/{auction.pk}/stream/", {"max_seconds": 1.5})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    chunks = iter(response.streaming_content)  # type: ignore[attr-defined]
    assert next(chunks) == b"retry: 2000\n\n"
    snapshot = next(chunks)
    with django_capture_on_commit_callbacks(execute=True):
        bid_place(auction_id=auction.pk, bidder=user_make(), max_amount_minor=300, currency="USD")
        bid_place(auction_id=auction.pk, bidder=user_make(), max_amount_minor=200, currency="USD")
        auction_close(auction_id=auction.pk, now=auction.ends_at)
    rest = b"".join(chunks)
    events = _events(snapshot + rest)
    kinds = [kind for kind, _ in events]
    assert kinds == ["snapshot", "bid", "bid", "closed", "end"]
    assert [data.get("price_minor") for _, data in events[:4]] == [100, 100, 225, 225]
    assert events[3][1]["status"] == "sold"
    assert b": keep-alive" in rest
    assert all("leader" not in data for _, data in events)


def test_stream_limits_are_validated() -> None:
    client = APIClient()
    client.credentials(**bearer(user_make()))
    response = client.get(f"/api/v1/auctions/{auction_make().pk}/stream/", {"max_seconds": 0})
    assert response.status_code == 400
    assert client.get("/api/v1/auctions/999999/stream/").status_code == 404


def test_publish_failure_is_logged_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    unreachable = redis.Redis(port=1, socket_connect_timeout=0.1, retry=Retry(NoBackoff(), 0))
    monkeypatch.setattr(live, "_client", unreachable)
    assert live.auction_event_publish(auction_id=1, event_type="bid", data={}) is False


def test_bids_placed_before_the_stream_is_first_read_are_in_its_snapshot(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.AUCTIONS_STREAM_CHANNEL_PREFIX = f"{settings.AUCTIONS_STREAM_CHANNEL_PREFIX}race-"
    settings.AUCTIONS_STREAM_KEEPALIVE_SECONDS = 60
    auction = auction_make()
    client = APIClient()
    client.credentials(**bearer(user_make()))
    response = client.get(f"/api/v1/auctions/{auction.pk}/stream/", {"max_seconds": 0.5})
    assert response.status_code == 200
    # The app has the answer but has not read its first byte: bids land (and are published)
    # before the stream subscribes.
    with django_capture_on_commit_callbacks(execute=True):
        bid_place(auction_id=auction.pk, bidder=user_make(), max_amount_minor=300, currency="USD")
        bid_place(auction_id=auction.pk, bidder=user_make(), max_amount_minor=200, currency="USD")
    auction.refresh_from_db()
    events = _events(b"".join(response.streaming_content))  # type: ignore[attr-defined]
    assert [(kind, data.get("price_minor"), data.get("bid_count")) for kind, data in events] == [
        ("snapshot", 225, 2),
        ("end", None, None),
    ]
    assert events[0][1]["version"] == auction.version
