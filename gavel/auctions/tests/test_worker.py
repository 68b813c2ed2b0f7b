"""Closing through a real Celery worker: the exact-time task and the beat scanner's task."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from conftest import wait_for
from gavel.auctions.models import Auction, Sale
from gavel.auctions.services.bidding import bid_place
from gavel.auctions.services.closing import auction_closes_schedule
from gavel.auctions.tests.factories import auction_make, user_make
from gavel.celery import app


@pytest.fixture
def private_worker(transactional_db: None, settings: Any) -> Iterator[str]:
    """A real worker on a queue of this test's own, so workers of other test runs sharing the
    broker cannot take its messages."""
    from celery.contrib.testing.worker import start_worker

    queue = f"auctions-test-{uuid.uuid4().hex[:12]}"
    settings.AUCTIONS_TASK_QUEUE = queue
    with app.connection_for_write() as connection:
        channel: Any = connection.default_channel
        channel.queue_declare(queue=queue, durable=True, auto_delete=False)
    with start_worker(
        app, pool="solo", perform_ping_check=False, shutdown_timeout=10, queues=[queue]
    ):
        yield queue


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_exact_time_task_closes_at_the_end_and_the_scanner_task_closes_the_rest(
    private_worker: str, settings: Any
) -> None:
    settings.AUCTIONS_HANDOFF_TASK = ""
    now = timezone.now()
    ending_soon = auction_make(now=now - timedelta(days=7) + timedelta(seconds=2))
    bid_place(auction_id=ending_soon.pk, bidder=user_make(), max_amount_minor=300, currency="USD")
    assert auction_closes_schedule() == 1
    wait_for(lambda: Auction.objects.get(pk=ending_soon.pk).status == "sold", timeout_seconds=15)
    closed = Auction.objects.get(pk=ending_soon.pk)
    assert closed.closed_at is not None
    assert closed.closed_at >= closed.ends_at
    assert closed.closed_at - closed.ends_at < timedelta(seconds=5)
    assert Sale.objects.filter(auction=closed).count() == 1

    overdue = auction_make(now=now - timedelta(days=8))
    app.send_task("gavel.auctions.tasks.auctions_close_scan", queue=private_worker)  # as beat
    wait_for(lambda: Auction.objects.get(pk=overdue.pk).status == "unsold", timeout_seconds=15)
