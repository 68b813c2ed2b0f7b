"""The whole pipeline over real HTTP (live_server), PostgreSQL and a real Celery worker."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest
import requests

from conftest import wait_for
from gavel.webhooks.models import WebhookAttempt, WebhookEvent
from gavel.webhooks.services import events_sweep
from gavel.webhooks.tests.conftest import (
    Applied,
    event_payload,
    fresh_connections,
    signed,
    statuses,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

Status = WebhookEvent.Status


def post_concurrently(url: str, bodies: list[tuple[bytes, str]]) -> list[int]:
    """POST every (body, signature) at once from its own thread; the answers' statuses."""
    barrier = threading.Barrier(len(bodies))
    answers: list[int] = [0] * len(bodies)

    def send(index: int, body: bytes, header: str) -> None:
        with fresh_connections():
            barrier.wait()
            response = requests.post(
                url,
                data=body,
                headers={"Stripe-Signature": header, "Content-Type": "application/json"},
                timeout=30,
            )
            answers[index] = response.status_code

    threads = [
        threading.Thread(target=send, args=(index, body, header))
        for index, (body, header) in enumerate(bodies)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def finished(count: int) -> bool:
    return WebhookEvent.objects.exclude(status__in=WebhookEvent.UNFINISHED).count() == count


def test_same_event_ten_times_concurrently_is_applied_once(
    live_server: Any, celery_worker_thread: Any, applied: Applied
) -> None:
    payload = event_payload("test.apply", object_id="pi_once")
    body, header = signed(payload)

    answers = post_concurrently(f"{live_server.url}/webhooks/stripe/", [(body, header)] * 10)

    assert answers == [200] * 10
    wait_for(lambda: finished(1))
    event = WebhookEvent.objects.get()
    assert (event.status, event.duplicate_deliveries, event.attempts_count) == (
        Status.PROCESSED,
        9,
        1,
    )
    assert applied.by_event == {payload["id"]: 1}


LIFECYCLE = ("created", "requires_action", "processing", "succeeded")


def test_shuffled_payment_lifecycles_end_in_the_right_state(
    live_server: Any, celery_worker_thread: Any, applied: Applied
) -> None:
    bodies = []
    for number in range(4):
        object_id = f"pi_lifecycle_{number}"
        for step, status in enumerate(LIFECYCLE):
            payload = event_payload(
                f"payment_intent.{status}",
                data_object={"object": "payment_intent", "id": object_id, "status": status},
                created=1_800_000_000 + step,
            )
            bodies.append(signed(payload))
    random.Random(7).shuffle(bodies)

    answers = post_concurrently(f"{live_server.url}/webhooks/stripe/", bodies)

    assert answers == [200] * 16
    wait_for(lambda: finished(16))
    assert applied.state == {f"pi_lifecycle_{number}": "succeeded" for number in range(4)}
    # What was applied to each object only ever moved forward.
    for number in range(4):
        steps = [
            LIFECYCLE.index(event.data_object["status"])
            for event in applied.events
            if event.object_id == f"pi_lifecycle_{number}"
        ]
        assert steps == sorted(set(steps))
        assert steps[-1] == 3
    counts = dict.fromkeys((Status.PROCESSED, Status.SUPERSEDED), 0)
    for status in statuses().values():
        counts[Status(status)] += 1
    assert counts[Status.PROCESSED] == len(applied.events)
    assert counts[Status.PROCESSED] + counts[Status.SUPERSEDED] == 16


def test_poison_event_is_dead_lettered_without_blocking_others(
    live_server: Any, celery_worker_thread: Any, applied: Applied, fast_retries: Any
) -> None:
    poison = event_payload("test.poison", object_id="pi_poison")
    good = [event_payload("test.apply", object_id=f"pi_good_{number}") for number in range(5)]
    url = f"{live_server.url}/webhooks/stripe/"

    answers = post_concurrently(url, [signed(poison)] + [signed(payload) for payload in good])

    assert answers == [200] * 6
    wait_for(lambda: WebhookEvent.objects.filter(status=Status.PROCESSED).count() == 5)
    assert sorted(applied.by_event) == sorted(payload["id"] for payload in good)

    def poison_dead() -> bool:
        events_sweep()
        return WebhookEvent.objects.filter(status=Status.DEAD).exists()

    wait_for(poison_dead)
    event = WebhookEvent.objects.get(stripe_event_id=poison["id"])
    assert event.attempts_count == 3
    assert (
        list(event.attempts.values_list("outcome", flat=True))
        == [WebhookAttempt.Outcome.FAILED] * 3
    )
    assert "poison event: always fails" in event.last_error
