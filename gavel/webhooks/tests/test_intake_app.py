"""The intake process's application (``gavel.asgi``: what production serves the webhook paths
with) over real HTTP, and its group-commit writer against PostgreSQL.

The Django views' own tests (``test_intake.py``) cover the shared intake core case by case; here
the same acceptance cases go through the intake application, plus what only it has: routing in
front of Django, group commit (batches, duplicates within a batch, a failing batch), and
recovery with the intake process as a real child process.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from django.db import connection
from prometheus_client import REGISTRY

from conftest import wait_for
from gavel.common.models import OutboxMessage
from gavel.common.outbox import outbox_sweep
from gavel.webhooks.envelope import envelope_read
from gavel.webhooks.intake_writer import IntakeUnavailable, IntakeWriter
from gavel.webhooks.models import WebhookEvent
from gavel.webhooks.services import events_sweep
from gavel.webhooks.services.drain import DRAIN_TASK
from gavel.webhooks.services.ingest import EventRow, IngestResult
from gavel.webhooks.tests.conftest import (
    CONNECT_SECRET,
    PLATFORM_PREVIOUS_SECRET,
    THIN_SECRET,
    Applied,
    event_payload,
    fresh_connections,
    signed,
    thin_payload,
)
from gavel.webhooks.tests.intake_server import IntakeServer, intake_server_running

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
Status = WebhookEvent.Status
PLATFORM_URL = "/webhooks/stripe/"
CONNECT_URL = "/webhooks/stripe/connect/"
THIN_URL = "/webhooks/stripe/thin/"


@pytest.fixture(scope="module")
def intake_server(django_db_setup: None) -> Iterator[IntakeServer]:
    with intake_server_running() as server:
        yield server


def post(
    server: IntakeServer,
    path: str,
    body: bytes,
    header: str | None,
    *,
    extra_headers: dict[str, str] | None = None,
) -> requests.Response:
    headers = {"Content-Type": "application/json", **(extra_headers or {})}
    if header is not None:
        headers["Stripe-Signature"] = header
    return requests.post(f"{server.url}{path}", data=body, headers=headers, timeout=30)


def post_concurrently(url: str, bodies: list[tuple[bytes, str]]) -> list[requests.Response]:
    """POST every (body, signature) at once, each from its own thread."""
    barrier = threading.Barrier(len(bodies))
    answers: list[Any] = [None] * len(bodies)

    def send(index: int, body: bytes, header: str) -> None:
        with fresh_connections():
            barrier.wait()
            answers[index] = requests.post(
                url,
                data=body,
                headers={"Stripe-Signature": header, "Content-Type": "application/json"},
                timeout=30,
            )

    threads = [
        threading.Thread(target=send, args=(index, body, header))
        for index, (body, header) in enumerate(bodies)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def assert_error_format(response: requests.Response, status_code: int, code: str) -> None:
    assert response.status_code == status_code
    assert response.headers["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"type", "code", "message", "fields", "request_id"}
    assert error["code"] == code
    assert error["type"] == ("invalid_request_error" if status_code < 500 else "api_error")
    assert error["fields"] == {}
    assert error["request_id"] == response.headers["X-Request-ID"]


def rejections_counted(endpoint: str, reason: str) -> float:
    labels = {"endpoint": endpoint, "reason": reason}
    return REGISTRY.get_sample_value("gavel_webhooks_rejections_total", labels) or 0.0


# --- acceptance: what is stored ---------------------------------------------------------------


def test_signed_event_is_stored_once_and_acknowledged(intake_server: IntakeServer) -> None:
    payload = event_payload("payment_intent.succeeded", object_id="pi_1", created=1_700_000_000)
    body, header = signed(payload)

    response = post(intake_server, PLATFORM_URL, body, header)

    assert response.status_code == 200
    assert response.json() == {"received": True}
    assert response.headers["X-Request-ID"].startswith("req_")
    event = WebhookEvent.objects.get()
    assert event.stripe_event_id == payload["id"]
    assert event.source == WebhookEvent.Source.PLATFORM
    assert event.status == Status.PENDING
    assert (event.event_type, event.object_id, event.object_type, event.account) == (
        "payment_intent.succeeded",
        "pi_1",
        "payment_intent",
        "",
    )
    assert (event.livemode, event.api_version) == (False, "2025-10-29.clover")
    assert int(event.stripe_created_at.timestamp()) == 1_700_000_000
    assert event.payload.encode() == body
    assert event.due_at is not None
    assert event.duplicate_deliveries == 0


def test_duplicate_deliveries_are_acknowledged_and_counted(intake_server: IntakeServer) -> None:
    body, header = signed(event_payload())

    answers = [post(intake_server, PLATFORM_URL, body, header).status_code for _ in range(3)]

    assert answers == [200, 200, 200]
    assert WebhookEvent.objects.get().duplicate_deliveries == 2


def test_endpoints_secrets_and_sources(intake_server: IntakeServer, settings: Any) -> None:
    settings.STRIPE_THIN_WEBHOOK_SECRETS = [THIN_SECRET]
    connect_body, connect_header = signed(event_payload(account="acct_1"), secret=CONNECT_SECRET)
    old_body, old_header = signed(event_payload(), secret=PLATFORM_PREVIOUS_SECRET)
    thin = thin_payload(related_id="cus_1", context="acct_7")
    thin_body, thin_header = signed(thin, secret=THIN_SECRET)

    assert post(intake_server, CONNECT_URL, connect_body, connect_header).status_code == 200
    assert post(intake_server, PLATFORM_URL, old_body, old_header).status_code == 200
    assert post(intake_server, THIN_URL, thin_body, thin_header).status_code == 200

    stored = set(WebhookEvent.objects.values_list("stripe_event_id", "source", "account"))
    assert stored == {
        (json.loads(connect_body)["id"], WebhookEvent.Source.CONNECT, "acct_1"),
        (json.loads(old_body)["id"], WebhookEvent.Source.PLATFORM, ""),
        (thin["id"], WebhookEvent.Source.THIN, "acct_7"),
    }


def test_live_connect_endpoint_keeps_test_events_ignored(
    intake_server: IntakeServer, settings: Any
) -> None:
    settings.STRIPE_SECRET_KEY = "sk_live_gavel"
    body, header = signed(event_payload(account="acct_9", livemode=False), secret=CONNECT_SECRET)

    assert post(intake_server, CONNECT_URL, body, header).status_code == 200

    event = WebhookEvent.objects.get()
    assert event.status == Status.IGNORED
    assert event.due_at is None
    assert "test-mode" in event.last_error


# --- acceptance: what is refused --------------------------------------------------------------


def test_every_refusal_is_answered_in_the_error_format_and_stores_nothing(
    intake_server: IntakeServer, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    body, header = signed(event_payload())
    _, forged = signed(event_payload(), secret="whsec_attacker")
    stale_body, stale = signed(event_payload(), timestamp=int(time.time()) - 301)
    connect_body, connect_header = signed(event_payload(account="acct_1"), secret=CONNECT_SECRET)
    live_body, live_header = signed(event_payload(livemode=True))
    broken_body, broken_header = signed(b'{"id": "evt_1", "object": "event", ')
    _, replaced_header = signed('{"id": "\ufffd"}'.encode())
    charge_body, charge_header = signed(json.dumps({"object": "charge", "id": "ch_1"}).encode())
    no_type = {"object": "event", "id": "evt_1", "created": 1, "livemode": False, "data": {}}
    no_type_body, no_type_header = signed(json.dumps(no_type).encode())
    thin_body, thin_header = signed(thin_payload(related_id="cus_1"), secret=THIN_SECRET)
    cases = [
        ("forged", PLATFORM_URL, body, forged, 400, "bad_signature"),
        (
            "altered",
            PLATFORM_URL,
            body.replace(b"succeeded", b"failed"),
            header,
            400,
            "bad_signature",
        ),
        ("other endpoint's", PLATFORM_URL, connect_body, connect_header, 400, "bad_signature"),
        ("stale", PLATFORM_URL, stale_body, stale, 400, "stale_timestamp"),
        ("unsigned", PLATFORM_URL, body, None, 400, "missing_signature"),
        ("nonsense", PLATFORM_URL, body, "nonsense", 400, "malformed_signature"),
        ("truncated", PLATFORM_URL, broken_body, broken_header, 400, "malformed_json"),
        ("not utf-8", PLATFORM_URL, b'{"id": "\xff"}', replaced_header, 400, "malformed_json"),
        ("a charge", PLATFORM_URL, charge_body, charge_header, 400, "not_an_event"),
        ("no type", PLATFORM_URL, no_type_body, no_type_header, 400, "not_an_event"),
        ("live", PLATFORM_URL, live_body, live_header, 400, "livemode_mismatch"),
        ("thin, no secret", THIN_URL, thin_body, thin_header, 400, "no_secret_configured"),
    ]
    for label, path, case_body, case_header, status_code, code in cases:
        before = rejections_counted("thin" if path == THIN_URL else "platform", code)

        response = post(intake_server, path, case_body, case_header)

        assert response.status_code == status_code, label
        assert_error_format(response, status_code, code)
        after = rejections_counted("thin" if path == THIN_URL else "platform", code)
        assert after == before + 1, label
    assert WebhookEvent.objects.count() == 0
    rejected = [record for record in caplog.records if record.getMessage() == "webhook rejected"]
    assert [getattr(record, "reason", None) for record in rejected] == [code for *_, code in cases]
    logged = "\n".join(str(record.__dict__) for record in rejected)
    assert "payment_intent" not in logged  # never the body


def test_oversize_body_is_refused_413_without_being_stored(
    intake_server: IntakeServer, settings: Any
) -> None:
    settings.WEBHOOK_MAX_BODY_BYTES = 1024
    payload = event_payload(data_object={"object": "charge", "description": "x" * 2000})
    body, header = signed(payload)

    declared = post(intake_server, PLATFORM_URL, body, header)
    chunked = requests.post(
        f"{intake_server.url}{PLATFORM_URL}",
        data=iter([body[:600], body[600:]]),  # no Content-Length: counted while read
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
        timeout=30,
    )

    assert_error_format(declared, 413, "body_too_large")
    assert_error_format(chunked, 413, "body_too_large")
    assert WebhookEvent.objects.count() == 0


# --- routing in front of Django ---------------------------------------------------------------


def test_other_paths_reach_django(intake_server: IntakeServer) -> None:
    health = requests.get(f"{intake_server.url}/healthz", timeout=30)
    missing = requests.get(f"{intake_server.url}/webhooks/stripe/unknown/", timeout=30)

    assert health.status_code == 200
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"  # Django's handler404, Gavel's format


def test_wrong_method_is_405_in_the_error_format(intake_server: IntakeServer) -> None:
    response = requests.get(f"{intake_server.url}{PLATFORM_URL}", timeout=30)

    assert_error_format(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "POST"


def test_a_well_formed_request_id_is_kept_and_echoed(intake_server: IntakeServer) -> None:
    body, _ = signed(event_payload())

    response = post(
        intake_server,
        PLATFORM_URL,
        body,
        "nonsense",
        extra_headers={"X-Request-ID": "req_caller_1"},
    )
    invalid = post(
        intake_server, PLATFORM_URL, body, "nonsense", extra_headers={"X-Request-ID": "bad id!"}
    )

    assert response.headers["X-Request-ID"] == "req_caller_1"
    assert response.json()["error"]["request_id"] == "req_caller_1"
    assert invalid.headers["X-Request-ID"].startswith("req_")
    assert invalid.headers["X-Request-ID"] != "bad id!"


# --- group commit -----------------------------------------------------------------------------


def row_for(payload: dict[str, Any]) -> EventRow:
    return EventRow(
        envelope=envelope_read(payload),
        body=json.dumps(payload),
        source=WebhookEvent.Source.PLATFORM,
        endpoint="platform",
    )


def store_together(writer: IntakeWriter, rows: list[EventRow]) -> list[IngestResult | Exception]:
    """Hand every row to ``writer`` at once, from one event loop; each row's own outcome."""

    async def run() -> list[IngestResult | Exception]:
        try:
            outcomes = await asyncio.gather(
                *(writer.store(row) for row in rows), return_exceptions=True
            )
            return [
                outcome if isinstance(outcome, IngestResult | Exception) else Exception(outcome)
                for outcome in outcomes
            ]
        finally:
            await writer.close()

    return asyncio.run(run())


def writer_for(batch_rows: int) -> IntakeWriter:
    # One connection and a long wait: the rows handed over together make exactly one batch.
    return IntakeWriter(
        connections=1, max_rows=batch_rows, max_wait_seconds=5, statement_timeout_ms=10_000
    )


def test_concurrent_duplicates_in_one_batch_store_one_and_count_the_others() -> None:
    payload = event_payload()
    writer = writer_for(5)

    outcomes = store_together(writer, [row_for(payload)] * 5)

    assert writer.batch_sizes == [5]
    event = WebhookEvent.objects.get()
    assert outcomes[0] == IngestResult(event_pk=event.pk, created=True)
    assert outcomes[1:] == [IngestResult(event_pk=None, created=False)] * 4
    assert event.duplicate_deliveries == 4


def test_each_request_gets_its_own_result() -> None:
    already = event_payload(event_id="evt_already_stored")
    assert store_together(writer_for(1), [row_for(already)]) == [
        IngestResult(event_pk=WebhookEvent.objects.get().pk, created=True)
    ]
    fresh = [event_payload(event_id=f"evt_fresh_{number}") for number in (3, 1, 2)]
    rows = [row_for(fresh[0]), row_for(already), row_for(fresh[1]), row_for(fresh[0])]
    rows.append(row_for(fresh[2]))
    writer = writer_for(len(rows))

    outcomes = store_together(writer, rows)

    assert writer.batch_sizes == [5]
    pks = dict(WebhookEvent.objects.values_list("stripe_event_id", "pk"))
    assert outcomes == [
        IngestResult(event_pk=pks["evt_fresh_3"], created=True),
        IngestResult(event_pk=None, created=False),
        IngestResult(event_pk=pks["evt_fresh_1"], created=True),
        IngestResult(event_pk=None, created=False),
        IngestResult(event_pk=pks["evt_fresh_2"], created=True),
    ]
    duplicates = dict(WebhookEvent.objects.values_list("stripe_event_id", "duplicate_deliveries"))
    assert duplicates == {
        "evt_already_stored": 1,
        "evt_fresh_3": 1,
        "evt_fresh_1": 0,
        "evt_fresh_2": 0,
    }


def test_a_failing_batch_fails_every_request_in_it_and_stores_nothing() -> None:
    good = [row_for(event_payload()) for _ in range(3)]
    # One row the database refuses (the type column holds 200 characters) fails its batch.
    refused = replace(envelope_read(event_payload()), event_type="x" * 300)
    bad = EventRow(envelope=refused, body="{}", source=WebhookEvent.Source.PLATFORM)
    writer = writer_for(4)

    outcomes = store_together(writer, [good[0], bad, good[1], good[2]])

    assert writer.batch_sizes == []
    assert [type(outcome) for outcome in outcomes] == [IntakeUnavailable] * 4
    assert WebhookEvent.objects.count() == 0
    # Delivered again in a batch of their own, they are stored.
    outcomes = store_together(writer_for(3), good)
    assert [outcome.created for outcome in outcomes if isinstance(outcome, IngestResult)] == [
        True
    ] * 3
    assert WebhookEvent.objects.count() == 3


def test_a_batch_the_database_cannot_commit_is_answered_503_and_stores_nothing(
    settings: Any,
) -> None:
    settings.WEBHOOK_INTAKE_WRITE_TIMEOUT_SECONDS = 1
    bodies = [signed(event_payload()) for _ in range(3)]
    database = connection.settings_dict
    with (
        intake_server_running() as server,
        psycopg.connect(
            dbname=database["NAME"],
            user=database["USER"],
            host=database["HOST"],
            port=database["PORT"],
        ) as blocker,
    ):
        blocker.execute("LOCK TABLE webhooks_webhookevent IN ACCESS EXCLUSIVE MODE")
        answers = post_concurrently(f"{server.url}{PLATFORM_URL}", bodies)
        blocker.rollback()

        for answer in answers:
            assert_error_format(answer, 503, "intake_unavailable")
        assert WebhookEvent.objects.count() == 0
        # Stripe delivers them again, and they are stored.
        again = post_concurrently(f"{server.url}{PLATFORM_URL}", bodies)
        assert [answer.status_code for answer in again] == [200] * 3
    assert WebhookEvent.objects.count() == 3


# --- the pipeline and recovery with the intake application ---------------------------------


def test_same_event_ten_times_concurrently_is_applied_once(
    intake_server: IntakeServer, celery_worker_thread: Any, applied: Applied
) -> None:
    payload = event_payload("test.apply", object_id="pi_ten")
    body, header = signed(payload)

    answers = post_concurrently(f"{intake_server.url}{PLATFORM_URL}", [(body, header)] * 10)

    assert [answer.status_code for answer in answers] == [200] * 10
    wait_for(lambda: WebhookEvent.objects.filter(status=Status.PROCESSED).exists())
    event = WebhookEvent.objects.get()
    assert event.duplicate_deliveries == 9
    time.sleep(0.3)
    assert applied.by_event == {payload["id"]: 1}


# The intake process as a real child process: uvicorn serving gavel.asgi on the test database.
INTAKE_PROCESS = """
import os, sys
import django
django.setup()
if os.environ.get("DIE_AFTER_COMMIT"):
    # The process dies right after the commit, when the drain request is published.
    import gavel.common.outbox as outbox
    outbox.outbox_publish = lambda **kwargs: os._exit(137)
import uvicorn
uvicorn.run(
    "gavel.asgi:application", host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop",
    http="httptools", log_level="error",
)
"""


@pytest.fixture
def intake_process() -> Iterator[Any]:
    started: list[subprocess.Popen[bytes]] = []

    def start(**env: str) -> str:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        database = connection.settings_dict
        child_env = dict(os.environ)
        child_env.update(
            DJANGO_SETTINGS_MODULE="gavel.settings.test",
            DATABASE_URL=(
                f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
                f"{database['NAME']}"
            ),
            PYTHONPATH=str(REPO),
            LOG_LEVEL="ERROR",
            **env,
        )
        process = subprocess.Popen(
            [sys.executable, "-c", INTAKE_PROCESS, str(port)], env=child_env, cwd=REPO
        )
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(f"{url}/healthz"), timeout_seconds=30)
        return url

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def test_broker_down_at_intake_event_is_processed_once_it_is_back(
    intake_process: Any, celery_worker_thread: Any, applied: Applied
) -> None:
    url = intake_process(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
    payload = event_payload("test.apply", object_id="pi_broker_down_app")
    body, header = signed(payload)

    response = requests.post(
        f"{url}{PLATFORM_URL}", data=body, headers={"Stripe-Signature": header}, timeout=60
    )

    assert response.status_code == 200
    assert WebhookEvent.objects.get(stripe_event_id=payload["id"]).status == Status.PENDING
    message = OutboxMessage.objects.get(task_name=DRAIN_TASK)
    assert message.published_at is None
    assert message.last_error
    time.sleep(0.3)
    assert applied.by_event == {}

    assert outbox_sweep(older_than_seconds=0) == 1

    wait_for(lambda: WebhookEvent.objects.filter(status=Status.PROCESSED).exists())
    assert applied.by_event == {payload["id"]: 1}


def test_intake_process_killed_after_commit_event_is_still_processed(
    intake_process: Any, celery_worker_thread: Any, applied: Applied, settings: Any
) -> None:
    settings.WEBHOOK_SWEEP_AFTER_SECONDS = 0
    url = intake_process(DIE_AFTER_COMMIT="1")
    payload = event_payload("test.apply", object_id="pi_intake_killed")
    body, header = signed(payload)

    with pytest.raises(requests.ConnectionError):  # no answer: Stripe will deliver again
        requests.post(
            f"{url}{PLATFORM_URL}", data=body, headers={"Stripe-Signature": header}, timeout=60
        )

    assert WebhookEvent.objects.get(stripe_event_id=payload["id"]).status == Status.PENDING
    assert OutboxMessage.objects.get(task_name=DRAIN_TASK).published_at is None
    assert events_sweep().overdue == 1
    wait_for(lambda: WebhookEvent.objects.filter(status=Status.PROCESSED).exists())
    assert applied.by_event == {payload["id"]: 1}
