"""Processing one stored event: routing, ordering, attempts, retries and dead letters."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from gavel.webhooks.envelope import envelope_read
from gavel.webhooks.models import WebhookAttempt, WebhookEvent, WebhookObjectCursor
from gavel.webhooks.services import event_ingest, event_process, retry_delay_seconds
from gavel.webhooks.tests.conftest import Applied, event_payload

pytestmark = pytest.mark.django_db

Status = WebhookEvent.Status
Outcome = WebhookAttempt.Outcome


def store(
    payload: dict[str, Any], source: WebhookEvent.Source = WebhookEvent.Source.PLATFORM
) -> int:
    result = event_ingest(envelope=envelope_read(payload), body=json.dumps(payload), source=source)
    assert result.event_pk is not None
    return result.event_pk


def test_handler_applies_event_once_and_attempt_is_recorded(applied: Applied) -> None:
    payload = event_payload("test.apply", object_id="pi_1", data_object={"status": "succeeded"})
    event_pk = store(payload)

    assert event_process(event_pk=event_pk, worker="w1", task_id="t1") == Status.PROCESSED
    assert event_process(event_pk=event_pk, worker="w1", task_id="t2") == Status.PROCESSED

    assert applied.by_event == {payload["id"]: 1}
    seen = applied.events[0]
    assert (seen.id, seen.type, seen.object_id, seen.superseded) == (
        payload["id"],
        "test.apply",
        "pi_1",
        False,
    )
    assert seen.raw == payload
    event = WebhookEvent.objects.get(pk=event_pk)
    assert (event.status, event.attempts_count, event.due_at) == (Status.PROCESSED, 1, None)
    assert event.finished_at is not None
    attempt = event.attempts.get()
    assert (attempt.number, attempt.outcome, attempt.action) == (1, Outcome.PROCESSED, "handle")
    assert (attempt.worker, attempt.task_id) == ("w1", "t1")
    assert attempt.finished_at is not None
    cursor = WebhookObjectCursor.objects.get(object_id="platform/pi_1")
    assert cursor.applied_event_id == payload["id"]


def test_unknown_type_is_ignored() -> None:
    event_pk = store(event_payload("invoice.finalized"))

    assert event_process(event_pk=event_pk) == Status.IGNORED

    assert WebhookEvent.objects.get(pk=event_pk).attempts.get().outcome == Outcome.IGNORED


def test_missing_event_is_a_no_op() -> None:
    assert event_process(event_pk=987654) == "missing"


def test_older_event_is_superseded_by_a_newer_one(applied: Applied) -> None:
    newer = event_payload(
        "payment_intent.succeeded",
        object_id="pi_2",
        created=200,
        data_object={"object": "payment_intent", "status": "succeeded"},
    )
    older = event_payload(
        "payment_intent.processing",
        object_id="pi_2",
        created=100,
        data_object={"object": "payment_intent", "status": "processing"},
    )
    newer_pk, older_pk = store(newer), store(older)

    assert event_process(event_pk=newer_pk) == Status.PROCESSED
    assert event_process(event_pk=older_pk) == Status.SUPERSEDED

    assert applied.state == {"pi_2": "succeeded"}
    assert [event.id for event in applied.events] == [newer["id"]]
    assert (
        WebhookObjectCursor.objects.get(object_id="platform/pi_2").applied_event_id == newer["id"]
    )


def test_same_object_id_on_two_accounts_is_two_objects(applied: Applied) -> None:
    """A capability is ``transfers`` on every connected account: an event about one account's
    capability never supersedes another's."""
    capability = {"object": "capability", "status": "active"}
    newer = event_payload(
        "payment_intent.succeeded",
        object_id="transfers",
        created=200,
        data_object=capability,
        account="acct_a",
    )
    older_elsewhere = event_payload(
        "payment_intent.succeeded",
        object_id="transfers",
        created=100,
        data_object=capability,
        account="acct_b",
    )
    newer_pk, other_pk = store(newer), store(older_elsewhere)

    assert event_process(event_pk=newer_pk) == Status.PROCESSED
    assert event_process(event_pk=other_pk) == Status.PROCESSED
    assert sorted(WebhookObjectCursor.objects.values_list("object_id", flat=True)) == [
        "acct_a/transfers",
        "acct_b/transfers",
    ]


def test_same_second_later_lifecycle_stage_wins_whatever_the_ids(applied: Applied) -> None:
    created = event_payload(
        "payment_intent.created",
        data_object={"object": "payment_intent", "id": "pi_3", "status": "requires_payment_method"},
        created=100,
        event_id="evt_zzz",
    )
    succeeded = event_payload(
        "payment_intent.succeeded",
        data_object={"object": "payment_intent", "id": "pi_3", "status": "succeeded"},
        created=100,
        event_id="evt_aaa",
    )
    succeeded_pk, created_pk = store(succeeded), store(created)

    assert event_process(event_pk=succeeded_pk) == Status.PROCESSED
    assert event_process(event_pk=created_pk) == Status.SUPERSEDED

    assert applied.state == {"pi_3": "succeeded"}
    assert WebhookObjectCursor.objects.get(object_id="platform/pi_3").applied_rank == 5


def test_same_second_same_stage_is_ordered_by_event_id(applied: Applied) -> None:
    first = event_payload("test.apply", object_id="pi_4", created=100, event_id="evt_a")
    second = event_payload("test.apply", object_id="pi_4", created=100, event_id="evt_b")
    second_pk, first_pk = store(second), store(first)

    event_process(event_pk=second_pk)

    assert event_process(event_pk=first_pk) == Status.SUPERSEDED


def test_progress_rank_of_unranked_snapshots_is_zero() -> None:
    from gavel.webhooks.ordering import progress_rank

    assert progress_rank(object_type="payout", data_object={"status": "paid"}) == 2
    assert progress_rank(object_type="payout", data_object={"status": 3}) == 0
    assert progress_rank(object_type="transfer", data_object={"status": "paid"}) == 0


def test_refetch_type_sees_older_events_flagged(applied: Applied) -> None:
    newer = event_payload("test.refetch", object_id="acct_1", created=200)
    older = event_payload("test.refetch", object_id="acct_1", created=100)
    newer_pk, older_pk = store(newer), store(older)

    event_process(event_pk=newer_pk)
    assert event_process(event_pk=older_pk) == Status.PROCESSED

    assert [(event.id, event.superseded) for event in applied.events] == [
        (newer["id"], False),
        (older["id"], True),
    ]
    assert (
        WebhookObjectCursor.objects.get(object_id="platform/acct_1").applied_event_id == newer["id"]
    )


def test_event_without_object_id_is_applied(applied: Applied) -> None:
    payload = event_payload("test.apply", data_object={"object": "balance"})
    payload["data"]["object"].pop("id")
    event_pk = store(payload)

    assert event_process(event_pk=event_pk) == Status.PROCESSED
    assert WebhookObjectCursor.objects.count() == 0


def test_failure_schedules_a_retry_with_backoff(applied: Applied, settings: Any) -> None:
    settings.WEBHOOK_RETRY_BASE_SECONDS = 30
    event_pk = store(event_payload("test.poison"))
    before = timezone.now()

    assert event_process(event_pk=event_pk) == Status.RETRYING

    event = WebhookEvent.objects.get(pk=event_pk)
    assert event.attempts_count == 1
    assert event.due_at is not None
    assert before + timedelta(seconds=15) <= event.due_at <= timezone.now() + timedelta(seconds=30)
    assert "RuntimeError: poison event: always fails" in event.last_error
    attempt = event.attempts.get()
    assert attempt.outcome == Outcome.FAILED
    assert "poison event" in attempt.error
    assert attempt.finished_at is not None


def test_poison_event_is_dead_lettered_after_its_attempts(applied: Applied, settings: Any) -> None:
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    event_pk = store(event_payload("test.poison"))

    results = [event_process(event_pk=event_pk) for _ in range(4)]

    assert results == [Status.RETRYING, Status.RETRYING, Status.DEAD, Status.DEAD]
    event = WebhookEvent.objects.get(pk=event_pk)
    assert (event.status, event.attempts_count, event.due_at) == (Status.DEAD, 3, None)
    assert list(event.attempts.values_list("outcome", flat=True)) == [Outcome.FAILED] * 3


def test_failed_handler_writes_are_rolled_back(applied: Applied, settings: Any) -> None:
    from gavel.webhooks.registry import IncomingEvent, handler_unregister, webhook_handler

    @webhook_handler("test.half_written")
    def half_written(event: IncomingEvent) -> None:
        WebhookObjectCursor.objects.create(
            object_id="written_then_failed", applied_created_at=timezone.now(), applied_event_id="x"
        )
        raise RuntimeError("after a write")

    try:
        event_pk = store(event_payload("test.half_written", object_id="pi_half"))
        assert event_process(event_pk=event_pk) == Status.RETRYING
    finally:
        handler_unregister("test.half_written")

    assert not WebhookObjectCursor.objects.filter(object_id="written_then_failed").exists()
    # The object's cursor (locked before the handler ran) did not move.
    assert WebhookObjectCursor.objects.get(object_id="platform/pi_half").applied_event_id == ""


def test_attempts_lost_with_their_worker_count_towards_the_limit(settings: Any) -> None:
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    event_pk = store(event_payload("test.apply"))
    WebhookEvent.objects.filter(pk=event_pk).update(attempts_count=2)

    assert event_process(event_pk=event_pk) == Status.DEAD

    event = WebhookEvent.objects.get(pk=event_pk)
    assert event.last_error == "attempt limit reached: workers lost during attempts"
    assert event.attempts.count() == 0


def test_retry_delay_grows_and_is_capped(settings: Any) -> None:
    settings.WEBHOOK_RETRY_BASE_SECONDS = 10
    settings.WEBHOOK_RETRY_MAX_SECONDS = 60

    delays = [retry_delay_seconds(attempt_number=number) for number in (1, 2, 3, 4, 10)]

    assert 5 <= delays[0] <= 10
    assert 10 <= delays[1] <= 20
    assert 20 <= delays[2] <= 40
    assert 30 <= delays[3] <= 60
    assert 30 <= delays[4] <= 60


def test_attempt_start_without_data_modifying_ctes_counts_and_records(settings: Any) -> None:
    from gavel.webhooks.services.processing import _attempt_start_portable

    settings.WEBHOOK_MAX_ATTEMPTS = 2
    event_pk = store(event_payload("test.apply"))

    first = _attempt_start_portable(event_pk=event_pk, worker="w", task_id="t")
    second = _attempt_start_portable(event_pk=event_pk, worker="w", task_id="t")
    third = _attempt_start_portable(event_pk=event_pk, worker="w", task_id="t")

    assert first is not None
    assert second is not None
    assert third is None  # out of attempts
    attempts = WebhookAttempt.objects.filter(event_id=event_pk).order_by("number")
    assert [(a.number, a.outcome, a.worker) for a in attempts] == [
        (1, Outcome.RUNNING, "w"),
        (2, Outcome.RUNNING, "w"),
    ]
    assert WebhookEvent.objects.get(pk=event_pk).attempts_count == 2
