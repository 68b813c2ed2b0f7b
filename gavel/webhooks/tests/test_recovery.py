"""Nothing is lost: a broker down at intake, a web process killed between commit and enqueue,
a worker killed mid-processing. Child processes are real Python processes on the test
database; the broker is the configured Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connection

from conftest import wait_for
from gavel.celery import app
from gavel.common.models import OutboxMessage
from gavel.common.outbox import outbox_sweep
from gavel.webhooks.envelope import envelope_read
from gavel.webhooks.models import WebhookAttempt, WebhookEvent, WebhookObjectCursor
from gavel.webhooks.services import event_ingest, events_sweep
from gavel.webhooks.services.drain import DRAIN_TASK
from gavel.webhooks.tests.conftest import Applied, event_payload, signed

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
Status = WebhookEvent.Status


def child_env(**overrides: str) -> dict[str, str]:
    database = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="gavel.settings.test",
        DATABASE_URL=(
            f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
            f"{database['NAME']}"
        ),
        PYTHONPATH=str(REPO),
        LOG_LEVEL="ERROR",
    )
    env.update(overrides)
    return env


# Posts one signed event to the intake view (real request handling, in a child process).
INTAKE_CHILD = """
import os, sys
import django
django.setup()
from django.test import Client
if os.environ.get("DIE_AFTER_COMMIT"):
    # The web process dies right after the commit, before the task is published.
    import gavel.common.outbox as outbox
    outbox.outbox_publish = lambda **kwargs: os._exit(137)
body = sys.stdin.buffer.read()
response = Client().post(
    "/webhooks/stripe/", data=body, content_type="application/json",
    headers={"Stripe-Signature": os.environ["SIGNATURE"]},
)
print(response.status_code)
"""


def post_from_child(payload: dict[str, Any], **env: str) -> subprocess.CompletedProcess[bytes]:
    body, header = signed(payload)
    return subprocess.run(
        [sys.executable, "-c", INTAKE_CHILD],
        input=body,
        env=child_env(SIGNATURE=header, **env),
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_broker_down_at_intake_event_is_processed_once_it_is_back(
    celery_worker_thread: Any, applied: Applied
) -> None:
    payload = event_payload("test.apply", object_id="pi_broker_down")

    child = post_from_child(payload, CELERY_BROKER_URL="redis://127.0.0.1:1/0")

    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == b"200"
    event = WebhookEvent.objects.get(stripe_event_id=payload["id"])
    assert event.status == Status.PENDING
    message = OutboxMessage.objects.get(task_name=DRAIN_TASK)
    assert message.published_at is None
    assert message.last_error
    time.sleep(0.3)
    assert applied.by_event == {}

    assert outbox_sweep(older_than_seconds=0) == 1

    wait_for(lambda: WebhookEvent.objects.filter(status=Status.PROCESSED).exists())
    assert applied.by_event == {payload["id"]: 1}


def test_web_process_killed_after_commit_event_is_still_processed(
    celery_worker_thread: Any, applied: Applied, settings: Any
) -> None:
    settings.WEBHOOK_SWEEP_AFTER_SECONDS = 0
    payload = event_payload("test.apply", object_id="pi_web_killed")

    child = post_from_child(payload, DIE_AFTER_COMMIT="1", WEBHOOK_SWEEP_AFTER_SECONDS="0")

    assert child.returncode == 137, child.stderr
    assert child.stdout == b""  # no answer was sent: Stripe will deliver again, harmlessly
    assert WebhookEvent.objects.get(stripe_event_id=payload["id"]).status == Status.PENDING
    assert OutboxMessage.objects.get(task_name=DRAIN_TASK).published_at is None

    # Either sweeper recovers it; here the webhook sweeper does, the outbox's stays idle.
    assert events_sweep().overdue == 1

    wait_for(lambda: WebhookEvent.objects.filter(status=Status.PROCESSED).exists())
    assert applied.by_event == {payload["id"]: 1}
    outbox_sweep(older_than_seconds=0)  # the original message, published late: a no-op
    time.sleep(0.5)
    assert applied.by_event == {payload["id"]: 1}


WORKER_CHILD = """
import pathlib, sys, time
import django
django.setup()
from gavel.webhooks.registry import webhook_handler

@webhook_handler("test.apply")
def block(event):
    pathlib.Path(sys.argv[1]).write_text(event.id)
    time.sleep(120)

from gavel.celery import app
app.worker_main([
    "worker", "--pool=solo", "-Q", "webhooks", "--without-gossip", "--without-mingle",
    "--without-heartbeat", "--loglevel=ERROR",
])
"""


@pytest.fixture
def webhooks_queue_empty() -> None:
    with app.connection_for_write() as broker:
        channel: Any = broker.default_channel
        channel.queue_declare(queue="webhooks", durable=True, auto_delete=False)
        channel.queue_purge("webhooks")


def test_worker_killed_mid_processing_event_completes_after_restart(
    transactional_db: None,
    applied: Applied,
    settings: Any,
    tmp_path: Path,
    webhooks_queue_empty: None,
) -> None:
    settings.WEBHOOK_SWEEP_AFTER_SECONDS = 0
    payload = event_payload("test.apply", object_id="pi_worker_killed")
    event_ingest(
        envelope=envelope_read(payload),
        body=json.dumps(payload),
        source=WebhookEvent.Source.PLATFORM,
    )
    marker = tmp_path / "started"
    with (tmp_path / "worker.log").open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-c", WORKER_CHILD, str(marker)],
            env=child_env(WEBHOOK_CLAIM_SECONDS="1"),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        try:
            wait_for(marker.exists, timeout_seconds=30)
        except AssertionError:
            print((tmp_path / "worker.log").read_text())  # why the worker never started
            raise
        attempt = WebhookAttempt.objects.get()
        assert attempt.outcome == WebhookAttempt.Outcome.RUNNING
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    event = WebhookEvent.objects.get()
    assert event.status == Status.PENDING
    assert applied.by_event == {}

    # A worker comes back; once the dead worker's one-second lease has run out, the sweeper
    # requests a drain for the overdue event and closes the lost attempt.
    with start_worker(app, pool="solo", perform_ping_check=False, queues=["webhooks"]):
        wait_for(lambda: events_sweep(lost_after_seconds=0).overdue == 1)
        wait_for(lambda: WebhookEvent.objects.filter(status=Status.PROCESSED).exists())

    assert applied.by_event == {payload["id"]: 1}
    event.refresh_from_db()
    assert event.attempts_count == 2
    assert list(event.attempts.values_list("outcome", flat=True)) == [
        WebhookAttempt.Outcome.LOST,
        WebhookAttempt.Outcome.PROCESSED,
    ]


# A worker whose handler writes for every event and blocks on the second: it dies mid-batch.
BATCH_WORKER_CHILD = """
import pathlib, sys, time
import django
django.setup()
from django.utils import timezone
from gavel.webhooks.models import WebhookObjectCursor
from gavel.webhooks.registry import webhook_handler

@webhook_handler("test.apply")
def write(event):
    WebhookObjectCursor.objects.create(
        object_id=f"written_by/{event.id}", applied_created_at=timezone.now(),
        applied_event_id=event.id,
    )

@webhook_handler("test.block")
def block(event):
    pathlib.Path(sys.argv[1]).write_text(event.id)
    time.sleep(120)

from gavel.celery import app
app.worker_main([
    "worker", "--pool=solo", "-Q", "webhooks", "--without-gossip", "--without-mingle",
    "--without-heartbeat", "--loglevel=ERROR",
])
"""


def test_worker_killed_mid_batch_its_events_complete_soon_and_lose_no_attempt(
    transactional_db: None,
    applied: Applied,
    settings: Any,
    tmp_path: Path,
    webhooks_queue_empty: None,
) -> None:
    """The batch's writes roll back with the dead worker's connection; its events are due again
    when the short lease runs out (not after a long one), each is retried alone, and none is
    charged an attempt for the crash."""
    settings.WEBHOOK_SWEEP_AFTER_SECONDS = 0
    payloads = [
        event_payload("test.apply", object_id="pi_batch_1"),
        event_payload("test.block", object_id="pi_batch_2"),
        event_payload("test.apply", object_id="pi_batch_3"),
    ]
    for payload in payloads:
        event_ingest(
            envelope=envelope_read(payload),
            body=json.dumps(payload),
            source=WebhookEvent.Source.PLATFORM,
        )
    marker = tmp_path / "started"
    with (tmp_path / "worker.log").open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-c", BATCH_WORKER_CHILD, str(marker)],
            env=child_env(WEBHOOK_CLAIM_SECONDS="2"),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        try:
            wait_for(marker.exists, timeout_seconds=30)
        except AssertionError:
            print((tmp_path / "worker.log").read_text())
            raise
        assert marker.read_text() == payloads[1]["id"]
        # Mid-batch: the first event's handler has written, uncommitted.
        assert (
            list(WebhookAttempt.objects.values_list("outcome", "isolated"))
            == [(WebhookAttempt.Outcome.RUNNING, False)] * 3
        )
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    assert set(WebhookEvent.objects.values_list("status", "attempts_count")) == {
        (Status.PENDING, 0)
    }
    assert not WebhookObjectCursor.objects.filter(object_id__startswith="written_by/").exists()

    from gavel.webhooks.registry import IncomingEvent, handler_unregister, webhook_handler

    @webhook_handler("test.block")
    def block_no_more(event: IncomingEvent) -> None:
        applied.record(event)

    try:
        with start_worker(app, pool="solo", perform_ping_check=False, queues=["webhooks"]):
            wait_for(lambda: events_sweep().overdue >= 1)
            wait_for(lambda: WebhookEvent.objects.filter(status=Status.PROCESSED).count() == 3)
    finally:
        handler_unregister("test.block")

    assert applied.by_event == {payload["id"]: 1 for payload in payloads}
    for payload in payloads:
        event = WebhookEvent.objects.get(stripe_event_id=payload["id"])
        assert event.attempts_count == 1
        assert list(event.attempts.values_list("number", "outcome", "isolated")) == [
            (1, WebhookAttempt.Outcome.ABANDONED, False),
            (1, WebhookAttempt.Outcome.PROCESSED, True),
        ]
