"""Operations: the sweeper, replay (service, command, admin), metrics."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from prometheus_client import REGISTRY

from gavel.common.models import OutboxMessage
from gavel.webhooks.envelope import envelope_read
from gavel.webhooks.models import WebhookAttempt, WebhookEvent
from gavel.webhooks.services import (
    drain_request,
    event_ingest,
    event_replay,
    events_claim,
    events_drain,
    events_sweep,
)
from gavel.webhooks.services.drain import DRAIN_TASK
from gavel.webhooks.services.processing import Claim
from gavel.webhooks.tasks import webhook_events_sweep
from gavel.webhooks.tests.conftest import Applied, event_payload, signed

pytestmark = pytest.mark.django_db

Status = WebhookEvent.Status


def store(event_type: str = "test.apply", **fields: Any) -> WebhookEvent:
    payload = event_payload(event_type)
    result = event_ingest(
        envelope=envelope_read(payload),
        body=json.dumps(payload),
        source=WebhookEvent.Source.PLATFORM,
    )
    assert result.event_pk is not None
    WebhookEvent.objects.filter(pk=result.event_pk).update(**fields)
    return WebhookEvent.objects.get(pk=result.event_pk)


def drains_requested() -> int:
    return OutboxMessage.objects.filter(task_name=DRAIN_TASK).count()


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def test_sweep_requests_a_drain_only_for_overdue_unfinished_events(settings: Any) -> None:
    settings.WEBHOOK_SWEEP_AFTER_SECONDS = 10
    long_ago = timezone.now() - timedelta(seconds=11)
    store(due_at=long_ago)
    store(status=Status.RETRYING, due_at=long_ago)
    store()  # due now: intake's own drain request covers it
    store(status=Status.PROCESSED, due_at=None)
    store(status=Status.DEAD, due_at=None)
    OutboxMessage.objects.all().delete()

    result = events_sweep()

    assert (result.overdue, result.attempts_lost) == (2, 0)
    assert drains_requested() == 1
    assert sample("gavel_webhooks_unfinished_events") == 3
    assert sample("gavel_webhooks_dead_events") == 1
    assert sample("gavel_webhooks_oldest_unfinished_age_seconds") >= 0


def test_sweep_requests_nothing_when_nothing_is_overdue() -> None:
    store(status=Status.PROCESSED, due_at=None)
    OutboxMessage.objects.all().delete()

    assert events_sweep().overdue == 0
    assert drains_requested() == 0


def test_sweep_task_runs_the_sweeper(settings: Any) -> None:
    settings.WEBHOOK_SWEEP_AFTER_SECONDS = 0
    store()
    OutboxMessage.objects.all().delete()

    assert webhook_events_sweep() == 1
    assert drains_requested() == 1


def test_claims_lease_due_events_once_oldest_first(settings: Any) -> None:
    settings.WEBHOOK_CLAIM_SECONDS = 120
    now = timezone.now()
    later = store(due_at=now - timedelta(seconds=1))
    first = store(due_at=now - timedelta(seconds=5))
    store(due_at=now + timedelta(seconds=30))  # a retry not due yet
    store(status=Status.PROCESSED, due_at=None)

    assert events_claim(limit=10) == [first.pk, later.pk]
    assert events_claim(limit=10) == []
    first.refresh_from_db()
    assert first.due_at is not None
    assert first.due_at > now + timedelta(seconds=100)


@pytest.mark.django_db(transaction=True)
def test_drain_processes_every_due_event_and_clears_its_signal(
    applied: Applied, settings: Any
) -> None:
    from gavel.webhooks.services.drain import drain_signal_reset

    settings.WEBHOOK_DRAIN_BATCH_SIZE = 2
    settings.WEBHOOK_DRAIN_SIGNAL_REUSE_MS = 0  # every request asks Redis
    events = [store() for _ in range(5)]
    assert drain_request() is False  # intake's request is pending: no second one

    assert events_drain(worker="w", task_id="t") == 5

    assert {event.stripe_event_id for event in events} == set(applied.by_event)
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {Status.PROCESSED}
    # Full batches asked for one more drain (to share the backlog), and only one.
    assert drain_request() is False
    drain_signal_reset()
    assert drain_request() is True


def test_drain_dead_letters_an_event_whose_workers_kept_dying(settings: Any) -> None:
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    event = store(attempts_count=3)

    assert events_drain() == 1

    event.refresh_from_db()
    assert (event.status, event.attempts_count) == (Status.DEAD, 3)
    assert event.attempts.count() == 0


def test_drain_claims_record_one_attempt_per_event(applied: Applied) -> None:
    events = [store() for _ in range(3)]

    assert events_drain(worker="host:1", task_id="task-1") == 3

    attempts = WebhookAttempt.objects.order_by("event_id")
    assert [(a.event_id, a.number, a.outcome, a.worker, a.task_id) for a in attempts] == [
        (event.pk, 1, WebhookAttempt.Outcome.PROCESSED, "host:1", "task-1") for event in events
    ]


def test_drain_without_postgresql_features_takes_the_portable_path(
    applied: Applied, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import connection

    events = [store() for _ in range(2)]
    monkeypatch.setattr(connection, "vendor", "sqlite")

    assert events_drain() == 2

    monkeypatch.undo()
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {Status.PROCESSED}
    assert sorted(applied.by_event) == sorted(event.stripe_event_id for event in events)


@pytest.mark.django_db(transaction=True)
def test_requests_soon_after_one_was_seen_skip_redis(settings: Any) -> None:
    from gavel.webhooks.services import drain

    # A window no slow machine can overrun between the two calls (the default is 50 ms).
    settings.WEBHOOK_DRAIN_SIGNAL_REUSE_MS = 600_000
    drain.drain_signal_reset()  # no mark, no recent sighting: the first call must request
    assert drain_request() is True
    drain._redis.cache_clear()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # any Redis call would now request a drain
    try:
        assert drain_request() is False  # within the window: no Redis, no request
        settings.WEBHOOK_DRAIN_SIGNAL_REUSE_MS = 0
        assert drain_request() is True  # window closed: Redis fails, a drain is requested
    finally:
        drain._redis.cache_clear()


def test_a_drain_claims_once_more_after_the_reuse_window(
    applied: Applied, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gavel.webhooks.services import drain

    settings.WEBHOOK_DRAIN_SIGNAL_REUSE_MS = 100
    real_claim = drain.events_claim_with_attempts
    late: list[WebhookEvent] = []

    def claim_then_an_event_arrives(**kwargs: Any) -> list[Claim]:
        claimed = real_claim(**kwargs)
        if not claimed and not late:
            # Stored, its drain request skipped within the window, after the first claim.
            late.append(store())
        return claimed

    monkeypatch.setattr(drain, "events_claim_with_attempts", claim_then_an_event_arrives)
    started = time.monotonic()

    assert events_drain() == 1

    assert time.monotonic() - started >= 0.2
    assert list(applied.by_event) == [late[0].stripe_event_id]


def test_drain_out_of_time_requests_another(applied: Applied, settings: Any) -> None:
    settings.WEBHOOK_DRAIN_TIME_BUDGET_SECONDS = 0
    store()
    OutboxMessage.objects.all().delete()

    assert events_drain() == 0
    assert drains_requested() == 1


@pytest.mark.django_db(transaction=True)
def test_drain_request_without_redis_falls_back_to_the_outbox(settings: Any) -> None:
    from gavel.webhooks.services import drain

    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    drain._redis.cache_clear()
    OutboxMessage.objects.all().delete()
    try:
        assert drain_request() is True
        assert drain_request() is True
        events_drain()
    finally:
        drain._redis.cache_clear()
    assert drains_requested() == 2


def test_drain_request_inside_a_transaction_is_always_written() -> None:
    OutboxMessage.objects.all().delete()

    assert drain_request() is True
    assert drain_request() is True
    assert drains_requested() == 2


def test_worker_start_forgets_a_pending_request(transactional_db: None) -> None:
    from gavel.webhooks.services.drain import drain_signal_reset

    assert drain_request() is True
    assert drain_request() is False

    drain_signal_reset()

    assert drain_request() is True


def test_sweep_closes_attempts_whose_worker_died() -> None:
    event = store()
    long_ago = timezone.now() - timedelta(hours=1)
    alone = WebhookAttempt.objects.create(event=event, number=1, started_at=long_ago, isolated=True)
    in_batch = WebhookAttempt.objects.create(event=event, number=2, started_at=long_ago)
    running = WebhookAttempt.objects.create(event=event, number=2, started_at=timezone.now())

    assert events_sweep().attempts_lost == 2

    for attempt in (alone, in_batch, running):
        attempt.refresh_from_db()
    assert (alone.outcome, in_batch.outcome, running.outcome) == (
        WebhookAttempt.Outcome.LOST,
        WebhookAttempt.Outcome.ABANDONED,
        WebhookAttempt.Outcome.RUNNING,
    )
    assert alone.finished_at is not None
    assert in_batch.finished_at is not None
    assert running.finished_at is None


def test_replay_puts_dead_and_ignored_events_back_and_leaves_others() -> None:
    dead = store(status=Status.DEAD, due_at=None, attempts_count=8, finished_at=timezone.now())
    ignored = store(status=Status.IGNORED, due_at=None)
    processed = store(status=Status.PROCESSED, due_at=None)
    OutboxMessage.objects.all().delete()

    assert event_replay(event_pk=dead.pk) is True
    assert event_replay(event_pk=ignored.pk) is True
    assert event_replay(event_pk=processed.pk) is False

    dead.refresh_from_db()
    assert (dead.status, dead.attempts_count, dead.finished_at) == (Status.PENDING, 0, None)
    assert dead.due_at is not None
    processed.refresh_from_db()
    assert processed.status == Status.PROCESSED
    assert drains_requested() == 2


def test_replayed_test_mode_event_on_a_live_system_is_still_never_applied(
    applied: Applied, settings: Any
) -> None:
    from gavel.webhooks.services import event_process

    settings.STRIPE_SECRET_KEY = "sk_live_gavel"
    event = store(status=Status.IGNORED, due_at=None)  # livemode False, as intake kept it
    assert event_replay(event_pk=event.pk) is True

    assert event_process(event_pk=event.pk) == Status.IGNORED

    assert applied.by_event == {}
    event.refresh_from_db()
    assert "never applied" in event.last_error


def test_replay_command_by_event_id() -> None:
    dead = store(status=Status.DEAD, due_at=None)
    other = store(status=Status.DEAD, due_at=None)
    out = StringIO()

    call_command("webhooks_replay", "--event", dead.stripe_event_id, stdout=out)

    assert "1 event(s) replayed" in out.getvalue()
    dead.refresh_from_db()
    other.refresh_from_db()
    assert (dead.status, other.status) == (Status.PENDING, Status.DEAD)


def test_replay_command_in_bulk_with_dry_run() -> None:
    dead = store("charge.refunded", status=Status.DEAD, due_at=None)
    store("charge.captured", status=Status.DEAD, due_at=None)
    store("charge.refunded", status=Status.IGNORED, due_at=None)
    since = (timezone.now() - timedelta(hours=1)).isoformat()
    out = StringIO()

    call_command(
        "webhooks_replay", "--status", "dead", "--type", "charge.refunded", "--since", since,
        "--dry-run", stdout=out,
    )  # fmt: skip

    assert "1 event(s) would be replayed" in out.getvalue()
    assert dead.stripe_event_id in out.getvalue()
    assert WebhookEvent.objects.filter(status=Status.PENDING).count() == 0

    call_command("webhooks_replay", "--status", "dead", "--type", "charge.refunded", stdout=out)

    assert list(WebhookEvent.objects.filter(status=Status.PENDING)) == [dead]


def test_replay_command_refuses_no_selection_and_bad_times() -> None:
    with pytest.raises(CommandError, match="Name events"):
        call_command("webhooks_replay")
    with pytest.raises(CommandError, match="ISO 8601"):
        call_command("webhooks_replay", "--since", "2026-11-01")


@pytest.fixture
def staff_client(django_user_model: Any) -> Client:
    user = django_user_model.objects.create_superuser(
        email="ops@example.com", password="correct horse battery"
    )
    client = Client()
    client.force_login(user)
    return client


def test_admin_finds_events_and_shows_attempts(staff_client: Client) -> None:
    event = store("charge.refunded")
    WebhookAttempt.objects.create(
        event=event,
        number=1,
        started_at=timezone.now(),
        finished_at=timezone.now(),
        outcome=WebhookAttempt.Outcome.FAILED,
        error="boom from the handler",
        worker="celery@host:1",
    )
    store("charge.captured")

    for term in (event.stripe_event_id, event.object_id, "charge.refunded"):
        listing = staff_client.get("/admin/webhooks/webhookevent/", {"q": term})
        assert listing.status_code == 200
        assert event.stripe_event_id in listing.content.decode()
        assert "1 result" in listing.content.decode()
    detail = staff_client.get(f"/admin/webhooks/webhookevent/{event.pk}/change/")
    assert detail.status_code == 200
    assert "boom from the handler" in detail.content.decode()
    by_status = staff_client.get("/admin/webhooks/webhookevent/", {"status__exact": "dead"})
    assert "0 results" in by_status.content.decode()
    assert staff_client.get("/admin/webhooks/webhookobjectcursor/").status_code == 200
    assert staff_client.get("/admin/webhooks/webhookevent/add/").status_code == 403


def test_admin_replay_action(staff_client: Client) -> None:
    dead = store(status=Status.DEAD, due_at=None)
    processed = store(status=Status.PROCESSED, due_at=None)

    response = staff_client.post(
        "/admin/webhooks/webhookevent/",
        {"action": "replay_selected", "_selected_action": [dead.pk, processed.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "Replayed 1 event(s); skipped 1" in response.content.decode()
    dead.refresh_from_db()
    processed.refresh_from_db()
    assert (dead.status, processed.status) == (Status.PENDING, Status.PROCESSED)


def test_intake_metrics_count_received_duplicates_and_rejections() -> None:
    received = sample("gavel_webhooks_received_total", {"endpoint": "platform"})
    duplicates = sample("gavel_webhooks_duplicates_total", {"endpoint": "platform"})
    rejected = sample(
        "gavel_webhooks_rejections_total", {"endpoint": "platform", "reason": "bad_signature"}
    )
    body, header = signed(event_payload())
    client = Client()

    for _ in range(2):
        client.post(
            "/webhooks/stripe/", body, "application/json", headers={"Stripe-Signature": header}
        )
    client.post(
        "/webhooks/stripe/", body, "application/json", headers={"Stripe-Signature": "t=1,v1=0"}
    )

    assert sample("gavel_webhooks_received_total", {"endpoint": "platform"}) == received + 1
    assert sample("gavel_webhooks_duplicates_total", {"endpoint": "platform"}) == duplicates + 1
    assert (
        sample(
            "gavel_webhooks_rejections_total",
            {"endpoint": "platform", "reason": "bad_signature"},
        )
        == rejected + 1
    )
