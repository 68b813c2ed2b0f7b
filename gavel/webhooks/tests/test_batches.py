"""Draining in batches: one claim, one transaction per batch, a savepoint per event, and what a
worker that dies costs the events it held."""

from __future__ import annotations

import json
import random
import threading
from typing import Any

import pytest

from gavel.webhooks.envelope import envelope_read
from gavel.webhooks.models import WebhookAttempt, WebhookEvent, WebhookObjectCursor
from gavel.webhooks.registry import IncomingEvent, handler_unregister, webhook_handler
from gavel.webhooks.services import event_ingest
from gavel.webhooks.services.drain import LOST_ERROR, events_claim_with_attempts
from gavel.webhooks.services.processing import Claim, events_process
from gavel.webhooks.tests.conftest import Applied, event_payload, fresh_connections

pytestmark = pytest.mark.django_db(transaction=True)

Status = WebhookEvent.Status
Outcome = WebhookAttempt.Outcome


def store(payload: dict[str, Any] | None = None) -> int:
    payload = payload or event_payload("test.apply")
    result = event_ingest(
        envelope=envelope_read(payload),
        body=json.dumps(payload),
        source=WebhookEvent.Source.PLATFORM,
    )
    assert result.event_pk is not None
    return result.event_pk


def claim(limit: int = 100) -> list[Claim]:
    return events_claim_with_attempts(limit=limit, worker="host:1", task_id="task-1")


def counts() -> list[int]:
    return list(WebhookEvent.objects.order_by("pk").values_list("attempts_count", flat=True))


def outcomes(event_pk: int) -> list[tuple[int, str, bool]]:
    attempts = WebhookAttempt.objects.filter(event_id=event_pk).order_by("id")
    return [(attempt.number, attempt.outcome, attempt.isolated) for attempt in attempts]


def test_a_batch_is_counted_when_its_attempts_end(applied: Applied) -> None:
    pks = [store() for _ in range(3)]

    claims = claim()

    assert [(c.event_pk, c.attempt_pk is not None, c.counted) for c in claims] == [
        (pk, True, False) for pk in pks
    ]
    assert counts() == [0, 0, 0]
    assert [outcomes(pk) for pk in pks] == [[(1, Outcome.RUNNING, False)]] * 3

    assert events_process(claims=claims) == dict.fromkeys(pks, Status.PROCESSED)

    assert counts() == [1, 1, 1]
    assert [outcomes(pk) for pk in pks] == [[(1, Outcome.PROCESSED, False)]] * 3
    assert len(applied.events) == 3


def test_a_lone_due_event_is_counted_when_its_attempt_starts(applied: Applied) -> None:
    event_pk = store()

    claims = claim()

    assert [(c.event_pk, c.counted) for c in claims] == [(event_pk, True)]
    assert counts() == [1]
    assert outcomes(event_pk) == [(1, Outcome.RUNNING, True)]
    assert events_process(claims=claims) == {event_pk: Status.PROCESSED}
    assert counts() == [1]


def test_a_failing_event_rolls_back_its_own_writes_and_nothing_else(
    applied: Applied, settings: Any
) -> None:
    """The batch runs without savepoints, fails on the bad event, rolls back and runs again
    with a savepoint per event: the good events' writes commit once, the bad one's never."""
    settings.WEBHOOK_RETRY_BASE_SECONDS = 30
    runs: list[str] = []

    def write(event: IncomingEvent, prefix: str) -> None:
        runs.append(f"{prefix}{event.object_id}")
        WebhookObjectCursor.objects.create(
            object_id=f"{prefix}{event.object_id}",
            applied_created_at="2026-01-01T00:00:00Z",
            applied_event_id=event.id,
        )

    @webhook_handler("test.writes")
    def writes(event: IncomingEvent) -> None:
        write(event, "written/")

    @webhook_handler("test.half_written")
    def half_written(event: IncomingEvent) -> None:
        write(event, "half/")
        raise RuntimeError("after a write")

    try:
        good_before = store(event_payload("test.writes", object_id="pi_good_1"))
        bad = store(event_payload("test.half_written", object_id="pi_bad"))
        good_after = store(event_payload("test.writes", object_id="pi_good_2"))

        statuses = events_process(claims=claim())
    finally:
        handler_unregister("test.writes", "test.half_written")

    assert statuses == {
        good_before: Status.PROCESSED,
        bad: Status.RETRYING,
        good_after: Status.PROCESSED,
    }
    # First run (no savepoints) up to the failure, rolled back; then the run that commits.
    assert runs == [
        "written/pi_good_1",
        "half/pi_bad",
        "written/pi_good_1",
        "half/pi_bad",
        "written/pi_good_2",
    ]
    written = WebhookObjectCursor.objects.filter(object_id__contains="/pi_")
    assert sorted(written.values_list("object_id", flat=True)) == [
        "platform/pi_bad",
        "platform/pi_good_1",
        "platform/pi_good_2",
        "written/pi_good_1",
        "written/pi_good_2",
    ]
    failed = WebhookEvent.objects.get(pk=bad)
    assert failed.attempts_count == 1
    assert failed.due_at is not None
    assert failed.finished_at is None
    assert "RuntimeError: after a write" in failed.last_error
    assert outcomes(bad) == [(1, Outcome.FAILED, False)]
    assert "after a write" in WebhookAttempt.objects.get(event_id=bad).error
    # The failing event's own cursor stayed where it was; the others moved.
    cursors = dict(WebhookObjectCursor.objects.values_list("object_id", "applied_event_id"))
    assert cursors["platform/pi_bad"] == ""
    assert cursors["platform/pi_good_1"] != ""
    assert cursors["platform/pi_good_2"] != ""


def test_a_batch_dead_letters_an_event_at_its_last_attempt(applied: Applied, settings: Any) -> None:
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    poison = store(event_payload("test.poison"))
    WebhookEvent.objects.filter(pk=poison).update(attempts_count=1)
    other = store(event_payload("test.unknown_type"))

    assert events_process(claims=claim()) == {poison: Status.DEAD, other: Status.IGNORED}

    event = WebhookEvent.objects.get(pk=poison)
    assert (event.attempts_count, event.due_at) == (2, None)
    assert event.finished_at is not None


LIFECYCLE = ("created", "requires_action", "processing", "succeeded")


def test_one_objects_events_in_one_batch_only_move_it_forward(applied: Applied) -> None:
    payloads = [
        event_payload(
            f"payment_intent.{status}",
            data_object={"object": "payment_intent", "id": "pi_batch", "status": status},
            created=1_800_000_000 + step,
        )
        for step, status in enumerate(LIFECYCLE)
    ]
    random.Random(3).shuffle(payloads)
    for payload in payloads:
        store(payload)

    events_process(claims=claim())

    assert applied.state == {"pi_batch": "succeeded"}
    steps = [LIFECYCLE.index(event.data_object["status"]) for event in applied.events]
    assert steps == sorted(set(steps))
    newest = next(p["id"] for p in payloads if p["type"] == "payment_intent.succeeded")
    cursor = WebhookObjectCursor.objects.get(object_id="platform/pi_batch")
    assert (cursor.applied_event_id, cursor.applied_rank) == (newest, 5)
    statuses = set(WebhookEvent.objects.values_list("status", flat=True))
    assert statuses <= {Status.PROCESSED, Status.SUPERSEDED}
    assert WebhookEvent.objects.filter(status=Status.PROCESSED).count() == len(applied.events)


def test_a_batch_in_progress_keeps_its_events_after_its_lease_ran_out(
    applied: Applied, settings: Any
) -> None:
    """The batch's row locks, not the lease, keep other drains off its events: another drain
    (its own connection) claims nothing while the batch works, however long it takes."""
    settings.WEBHOOK_CLAIM_SECONDS = 0
    entered, release = threading.Event(), threading.Event()

    @webhook_handler("test.slow")
    def slow(event: IncomingEvent) -> None:
        entered.set()
        release.wait(timeout=30)

    results: dict[int, str] = {}
    try:
        pks = [store(event_payload("test.slow")), store()]
        claims = claim()
        assert len(claims) == 2

        def work() -> None:
            with fresh_connections():
                results.update(events_process(claims=claims))

        worker = threading.Thread(target=work)
        worker.start()
        try:
            assert entered.wait(timeout=30)
            assert claim() == []  # due again by its lease, but locked
        finally:
            release.set()
            worker.join(timeout=30)
    finally:
        handler_unregister("test.slow")

    assert results == dict.fromkeys(pks, Status.PROCESSED)
    assert [outcomes(pk) for pk in pks] == [[(1, Outcome.PROCESSED, False)]] * 2


def test_worker_dying_mid_batch_costs_no_attempt_and_each_event_runs_alone_next(
    applied: Applied, settings: Any
) -> None:
    settings.WEBHOOK_CLAIM_SECONDS = 0  # the dead batch's lease has run out
    pks = [store() for _ in range(3)]
    claim()  # the worker dies before its batch commits: nothing but the claim was written

    alone = [claim() for _ in pks]

    assert [[(c.event_pk, c.counted) for c in claims] for claims in alone] == [
        [(pk, True)] for pk in pks
    ]
    for claims in alone:
        events_process(claims=claims)
    assert counts() == [1, 1, 1]
    assert [outcomes(pk) for pk in pks] == [
        [(1, Outcome.ABANDONED, False), (1, Outcome.PROCESSED, True)]
    ] * 3
    assert set(
        WebhookAttempt.objects.filter(outcome=Outcome.ABANDONED).values_list("error", flat=True)
    ) == {LOST_ERROR}
    assert sorted(applied.by_event.values()) == [1, 1, 1]


def test_an_event_that_kills_its_workers_reaches_the_limit_alone(
    applied: Applied, settings: Any
) -> None:
    """A batch holding an event that kills workers: its companions lose nothing and are
    processed; the killer, run alone from then on, is counted each time and dead-lettered."""
    settings.WEBHOOK_CLAIM_SECONDS = 0
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    innocent, killer, other = store(), store(), store()

    claim()  # the batch's worker dies (the killer was running)
    for _ in range(20):
        claims = claim()
        if not claims:
            break
        if [c.event_pk for c in claims] == [killer] and claims[0].attempt_pk is not None:
            continue  # it kills this worker too
        events_process(claims=claims)

    states = dict(WebhookEvent.objects.values_list("pk", "status"))
    assert states == {innocent: Status.PROCESSED, killer: Status.DEAD, other: Status.PROCESSED}
    assert counts() == [1, 3, 1]
    assert outcomes(killer) == [
        (1, Outcome.ABANDONED, False),
        (1, Outcome.LOST, True),
        (2, Outcome.LOST, True),
        (3, Outcome.LOST, True),
    ]
    assert WebhookEvent.objects.get(pk=killer).last_error == (
        "attempt limit reached: workers lost during attempts"
    )


def test_an_attempt_taken_over_is_left_to_the_drain_that_took_it(
    applied: Applied, settings: Any
) -> None:
    settings.WEBHOOK_CLAIM_SECONDS = 0
    first_pk, second_pk = store(), store()
    stalled = claim()  # a drain stalls past its lease before it locks its batch
    taken_over = claim()  # another takes the first event over (alone)
    assert [c.event_pk for c in taken_over] == [first_pk]

    assert events_process(claims=stalled) == {first_pk: Status.PENDING, second_pk: "processed"}
    assert events_process(claims=taken_over) == {first_pk: Status.PROCESSED}

    assert outcomes(first_pk) == [(1, Outcome.ABANDONED, False), (1, Outcome.PROCESSED, True)]
    assert outcomes(second_pk) == [(1, Outcome.PROCESSED, False)]
    assert applied.by_event == dict.fromkeys(
        WebhookEvent.objects.values_list("stripe_event_id", flat=True), 1
    )


def test_sweeper_lost_attempts_do_not_hide_a_dead_worker_from_the_next_claim(
    applied: Applied, settings: Any
) -> None:
    """An attempt the sweeper closed (no drain claimed its event for long) still makes the
    event run alone next."""
    from gavel.webhooks.services.sweep import attempts_mark_lost

    settings.WEBHOOK_CLAIM_SECONDS = 0
    pks = [store(), store()]
    claim()
    assert attempts_mark_lost(older_than_seconds=0) == 2

    assert [(c.event_pk, c.counted) for c in claim()] == [(pks[0], True)]


def test_batch_size_follows_the_pace_of_the_last_batch(settings: Any) -> None:
    from gavel.webhooks.services.drain import batch_size_next

    settings.WEBHOOK_DRAIN_BATCH_SIZE = 100
    settings.WEBHOOK_DRAIN_BATCH_TARGET_MS = 500

    assert batch_size_next(size=12, claimed=12, seconds=0.012) == 24  # at most doubles
    assert batch_size_next(size=80, claimed=80, seconds=0.08) == 100  # capped
    assert batch_size_next(size=100, claimed=100, seconds=2.0) == 25  # 20 ms each: 25 fit
    assert batch_size_next(size=25, claimed=5, seconds=5.0) == 1  # a Stripe call each
    assert batch_size_next(size=7, claimed=0, seconds=0.0) == 7


def test_a_drain_of_slow_handlers_claims_small_batches(
    applied: Applied, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gavel.webhooks.services import drain

    settings.WEBHOOK_DRAIN_BATCH_SIZE = 16
    settings.WEBHOOK_DRAIN_BATCH_TARGET_MS = 100

    @webhook_handler("test.slow_call")
    def slow_call(event: IncomingEvent) -> None:
        threading.Event().wait(0.06)  # at least 60 ms, like a call to Stripe

    real_claim = drain.events_claim_with_attempts
    sizes: list[int] = []

    def claim_recorded(**kwargs: Any) -> list[Claim]:
        sizes.append(kwargs["limit"])
        return real_claim(**kwargs)

    monkeypatch.setattr(drain, "events_claim_with_attempts", claim_recorded)
    try:
        pks = [store(event_payload("test.slow_call")) for _ in range(5)]
        assert drain.events_drain() == 5
    finally:
        handler_unregister("test.slow_call")

    assert sizes[:4] == [2, 1, 1, 1]
    assert set(WebhookEvent.objects.filter(pk__in=pks).values_list("status", flat=True)) == {
        Status.PROCESSED
    }
