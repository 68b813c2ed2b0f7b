"""The outbox: work enqueued after commit survives a process killed between commit and publish,
and a broker that is down; a real Celery worker runs it once in effect."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, transaction

from conftest import wait_for
from gavel.celery import app
from gavel.common.models import OutboxMessage
from gavel.common.outbox import outbox_enqueue, outbox_publish, outbox_sweep
from gavel.ledger.models import JournalEntry, LedgerAccount
from gavel.ledger.services import credit, debit, entry_post

REPO = Path(__file__).resolve().parents[3]
EFFECT_TASK = "gavel.tests.outbox_effect"


@app.task(name=EFFECT_TASK, acks_late=True)
def outbox_effect(reference: str) -> None:
    """A task whose effect is guarded by a unique constraint, as every Gavel task is."""
    entry_post(
        reference=reference,
        kind="outbox_test",
        lines=[
            debit("test:cash", LedgerAccount.Kind.ASSET, 100, "USD"),
            credit("test:owed", LedgerAccount.Kind.LIABILITY, 100, "USD"),
        ],
    )


REQUEST_ID_TASK = "gavel.tests.outbox_request_id"


@app.task(name=REQUEST_ID_TASK, acks_late=True)
def outbox_request_id(reference: str) -> None:
    """Records the request id the task sees, to prove it travelled from the request."""
    from gavel.common.context import request_id_current

    entry_post(
        reference=reference,
        kind="outbox_test",
        description=request_id_current() or "",
        lines=[
            debit("test:cash", LedgerAccount.Kind.ASSET, 1, "USD"),
            credit("test:owed", LedgerAccount.Kind.LIABILITY, 1, "USD"),
        ],
    )


def _child_env(**overrides: str) -> dict[str, str]:
    database = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="gavel.settings.test",
        DATABASE_URL=f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        PYTHONPATH=str(REPO),
    )
    env.update(overrides)
    return env


CHILD = """
import os
import django
django.setup()
from django.db import transaction
from gavel.common.outbox import outbox_enqueue
crash_code = os.environ.get("CRASH_CODE")
with transaction.atomic():
    if crash_code:
        # Registered first, so it runs first after commit: the process dies before publishing.
        transaction.on_commit(lambda: os._exit(int(crash_code)))
    outbox_enqueue(task_name=%(task)r, kwargs={"reference": %(reference)r}, queue="default")
"""


def _run_child(reference: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD % {"task": EFFECT_TASK, "reference": reference}],
        env=_child_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _wait_for_entry(reference: str) -> None:
    wait_for(
        lambda: JournalEntry.objects.filter(reference=reference).exists(),
        failure=f"task for {reference} never ran",
    )


@pytest.mark.django_db(transaction=True)
def test_killed_between_commit_and_publish_the_sweeper_still_runs_it_once(
    celery_worker_thread: Any,
) -> None:
    child = _run_child("crash-1", CRASH_CODE="137")
    assert child.returncode == 137, child.stderr
    message = OutboxMessage.objects.get(kwargs__reference="crash-1")
    assert message.published_at is None
    time.sleep(0.2)
    assert not JournalEntry.objects.filter(reference="crash-1").exists()

    assert outbox_sweep(older_than_seconds=0) == 1
    _wait_for_entry("crash-1")
    # A second delivery of the same work (a sweep racing the relay) changes nothing.
    app.send_task(EFFECT_TASK, kwargs={"reference": "crash-1"}, queue="default")
    assert outbox_sweep(older_than_seconds=0) == 0
    time.sleep(0.5)
    assert JournalEntry.objects.filter(reference="crash-1").count() == 1


@pytest.mark.django_db(transaction=True)
def test_broker_down_at_commit_keeps_the_work_until_it_is_back(celery_worker_thread: Any) -> None:
    child = _run_child("down-1", CELERY_BROKER_URL="redis://127.0.0.1:1/0")
    assert child.returncode == 0, child.stderr
    message = OutboxMessage.objects.get(kwargs__reference="down-1")
    assert message.published_at is None
    assert message.publish_attempts == 1
    assert message.last_error

    assert outbox_sweep(older_than_seconds=0) == 1
    _wait_for_entry("down-1")
    message.refresh_from_db()
    assert message.published_at is not None


@pytest.mark.django_db(transaction=True)
def test_enqueue_publishes_only_after_commit_and_not_after_rollback(
    celery_worker_thread: Any,
) -> None:
    with transaction.atomic():
        outbox_enqueue(task_name=EFFECT_TASK, kwargs={"reference": "commit-1"})
        assert OutboxMessage.objects.get(kwargs__reference="commit-1").published_at is None
    _wait_for_entry("commit-1")
    assert OutboxMessage.objects.get(kwargs__reference="commit-1").published_at is not None

    def enqueue_then_fail() -> None:
        with transaction.atomic():
            outbox_enqueue(task_name=EFFECT_TASK, kwargs={"reference": "rollback-1"})
            raise RuntimeError("the change is rolled back")

    with pytest.raises(RuntimeError):
        enqueue_then_fail()
    assert not OutboxMessage.objects.filter(kwargs__reference="rollback-1").exists()
    assert outbox_publish(message_id=10**9) is False


@pytest.mark.django_db(transaction=True)
def test_the_request_id_travels_into_the_task(celery_worker_thread: Any) -> None:
    from gavel.common.context import request_id_var

    token = request_id_var.set("req_from_the_api_call")
    try:
        with transaction.atomic():
            outbox_enqueue(task_name=REQUEST_ID_TASK, kwargs={"reference": "rid-1"})
    finally:
        request_id_var.reset(token)
    _wait_for_entry("rid-1")
    assert JournalEntry.objects.get(reference="rid-1").description == "req_from_the_api_call"
    assert OutboxMessage.objects.get(kwargs__reference="rid-1").request_id == (
        "req_from_the_api_call"
    )


@pytest.mark.django_db(transaction=True)
def test_an_eta_task_waits_for_its_time(celery_worker_thread: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    eta = timezone.now() + timedelta(seconds=1.5)
    with transaction.atomic():
        outbox_enqueue(task_name=EFFECT_TASK, kwargs={"reference": "eta-1"}, eta=eta)
    assert OutboxMessage.objects.get(kwargs__reference="eta-1").eta == eta
    time.sleep(0.5)
    assert not JournalEntry.objects.filter(reference="eta-1").exists()
    _wait_for_entry("eta-1")
    assert JournalEntry.objects.get(reference="eta-1").created_at >= eta


RABBITMQ_CHILD = """
import time
import django
django.setup()
from celery.contrib.testing.worker import start_worker
from django.db import transaction
from gavel.celery import app
from gavel.common.outbox import outbox_enqueue
from gavel.common.tests.test_outbox import EFFECT_TASK
from gavel.ledger.models import JournalEntry

assert app.conf.broker_url.startswith("amqp://"), app.conf.broker_url
# RabbitMQ keeps what a run that died left in the queue (the same task id every run: the
# first outbox message of a fresh test database): start from an empty queue.
app.control.purge()
with start_worker(
    app, pool="solo", perform_ping_check=False, queues=["default"], shutdown_timeout=30
):
    with transaction.atomic():
        outbox_enqueue(task_name=EFFECT_TASK, kwargs={"reference": "rabbit-1"})
    deadline = time.monotonic() + 30
    while not JournalEntry.objects.filter(reference="rabbit-1").exists():
        assert time.monotonic() < deadline, "the task never ran on RabbitMQ"
        time.sleep(0.05)
print("ran on", app.conf.broker_url.split("@")[-1])
"""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_outbox_and_worker_run_on_rabbitmq_too() -> None:
    result = subprocess.run(
        [sys.executable, "-c", RABBITMQ_CHILD],
        env=_child_env(CELERY_BROKER_URL=settings.RABBITMQ_URL),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ran on" in result.stdout
    assert JournalEntry.objects.filter(reference="rabbit-1").count() == 1


def test_celery_is_configured_for_at_least_once_delivery() -> None:
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert {queue.name for queue in conf.task_queues} == {
        "default",
        "webhooks",
        "payments",
        "auctions",
    }
    assert conf.broker_transport_options["visibility_timeout"] == (
        settings.CELERY_VISIBILITY_TIMEOUT_SECONDS
    )
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit
