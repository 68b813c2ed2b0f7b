"""Webhook processing alone: a Celery worker drains a backlog of stored events, against
PostgreSQL, several configurations side by side in one run.

For each configuration and round: BENCH_PROCESSING_EVENTS Stripe-shaped events (about 3.4 KB,
one object each) are stored not yet due, a worker (prefork, BENCH_CELERY_CONCURRENCY
processes, one no-op handler for the events' type, so each event takes the full path: attempt,
event lock, object cursor lock, handler, status) is started and waits, then every event is
made due at once, one drain is requested and the clock runs until none is unfinished. Worker
start is not timed. Rounds alternate the configurations, so the machine's noise falls on each.

Configurations: ``batch=N`` runs this tree with WEBHOOK_DRAIN_BATCH_SIZE=N (20 was the size of
the event-at-a-time design; the default is this tree's); BENCH_BASELINE_TREE, a path to another
checkout (``git archive <commit> | tar -x -C /tmp/base``), adds that tree's worker at its own
defaults, first (the database schema is this tree's: use a commit it is compatible with, e.g.
185d188, the event-at-a-time processing this design replaced).

Then, per configuration, the lag from storage to processed under a steady load: events
stored one at a time at BENCH_PROCESSING_LAG_RATE/s (600; 0 skips it) for 8 s, each followed
by a drain request, as intake does.

Knobs: BENCH_PROCESSING_EVENTS (20000), BENCH_PROCESSING_BATCHES ("20,default"),
BENCH_PROCESSING_ROUNDS (2), BENCH_CELERY_CONCURRENCY (6), BENCH_BROKER_URL
(redis://127.0.0.1:6379/12), BENCH_BASELINE_TREE.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection

REPO = Path(__file__).resolve().parent.parent
EVENTS = int(os.environ.get("BENCH_PROCESSING_EVENTS", "20000"))
ROUNDS = int(os.environ.get("BENCH_PROCESSING_ROUNDS", "2"))
CONCURRENCY = int(os.environ.get("BENCH_CELERY_CONCURRENCY", "6"))
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/12")
BASELINE_TREE = os.environ.get("BENCH_BASELINE_TREE", "")
LAG_RATE = float(os.environ.get("BENCH_PROCESSING_LAG_RATE", "600"))
LAG_SECONDS = 8.0
DRAIN_TIMEOUT_SECONDS = 300.0
EVENT_TYPE = "benchmark.payment_intent.updated"
DRAIN_TASK = "gavel.webhooks.tasks.webhook_events_drain"

WORKER = f"""
import pathlib, sys
import django
django.setup()
from celery.signals import worker_ready
from gavel.webhooks.registry import webhook_handler

@webhook_handler({EVENT_TYPE!r})
def apply(event):
    pass

@worker_ready.connect
def ready(**kwargs):
    pathlib.Path(sys.argv[1]).write_text("ready")

from gavel.celery import app
app.worker_main([
    "worker", "--pool=prefork", "--concurrency={CONCURRENCY}", "-Q", "webhooks",
    "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=WARNING",
])
"""


def _payload(number: int, created: int) -> str:
    data_object: dict[str, Any] = {
        "id": f"pi_bench_{number:09d}",
        "object": "payment_intent",
        "amount": 125000,
        "amount_received": 125000,
        "application_fee_amount": 12500,
        "capture_method": "automatic",
        "client_secret": f"pi_bench_{number:09d}_secret_" + "x" * 24,
        "created": created,
        "currency": "usd",
        "customer": "cus_" + "c" * 14,
        "description": "Lot 1432: a 1967 Omega Speedmaster, hammer price",
        "latest_charge": "ch_" + "h" * 24,
        "livemode": False,
        "metadata": {
            "auction_id": "4821",
            "lot_id": "1432",
            "sale_id": "9120",
            "buyer_premium_bps": "2500",
            "hammer_minor": "100000",
            "premium_minor": "25000",
            "lot_title": "Omega Speedmaster Professional ref. 145.012-67, cal. 321, 1967 " * 3,
        },
        "payment_method": "pm_" + "m" * 24,
        "payment_method_types": ["card"],
        "shipping": {
            "address": {
                "city": "Brooklyn",
                "country": "US",
                "line1": "350 Fifth Avenue",
                "postal_code": "11201",
            },
            "name": "Bea Buyer",
        },
        "status": "succeeded",
        "transfer_data": {"destination": "acct_" + "d" * 16},
        "filler": "f" * 1400,
    }
    return json.dumps(
        {
            "id": f"evt_bench_{number:09d}",
            "object": "event",
            "api_version": "2025-10-29.clover",
            "created": created,
            "data": {"object": data_object, "previous_attributes": {"status": "processing"}},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": EVENT_TYPE,
        },
        indent=2,
    )


def _database_url() -> str:
    database = connection.settings_dict
    user = database.get("USER") or "postgres"
    password = f":{database['PASSWORD']}" if database.get("PASSWORD") else ""
    host = database.get("HOST") or "127.0.0.1"
    return f"postgres://{user}{password}@{host}:{database.get('PORT') or 5432}/{database['NAME']}"


def _backlog_store(database: psycopg.Connection[Any]) -> None:
    """EVENTS unfinished events, not due yet (the worker must not start on them early)."""
    database.execute(
        "TRUNCATE webhooks_webhookattempt, webhooks_webhookobjectcursor, webhooks_webhookevent, "
        "common_outboxmessage"
    )
    created = int(time.time())
    with (
        database.cursor() as cursor,
        cursor.copy(
            "COPY webhooks_webhookevent (stripe_event_id, source, event_type, api_version, "
            "livemode, account, object_id, object_type, stripe_created_at, payload, status, "
            "attempts_count, duplicate_deliveries, due_at, last_error, received_at) FROM STDIN"
        ) as copy,
    ):
        for number in range(EVENTS):
            copy.write_row(
                (
                    f"evt_bench_{number:09d}",
                    "platform",
                    EVENT_TYPE,
                    "2025-10-29.clover",
                    False,
                    "",
                    f"pi_bench_{number:09d}",
                    "payment_intent",
                    "now",
                    _payload(number, created),
                    "pending",
                    0,
                    0,
                    "infinity",
                    "",
                    "now",
                )
            )
    database.execute("VACUUM ANALYZE webhooks_webhookevent")


def _unfinished(database: psycopg.Connection[Any]) -> int:
    row = database.execute(
        "SELECT count(*) FROM webhooks_webhookevent WHERE status IN ('pending', 'retrying')"
    ).fetchone()
    return int(row[0]) if row else 0


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _queue_purge() -> None:
    """The webhooks queue, declared and emptied."""
    from gavel.celery import app

    with app.connection_for_write(BROKER_URL) as broker:
        channel: Any = broker.default_channel
        channel.queue_declare(queue="webhooks", durable=True, auto_delete=False)
        channel.queue_purge("webhooks")


@contextmanager
def _worker(label: str, tree: Path, overrides: dict[str, str]) -> Iterator[None]:
    """A Celery worker of ``tree``'s code (with ``overrides`` in its environment), ready
    (its pool's processes done importing) for the block, stopped after it."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=_database_url(),
        DATABASE_CONN_MAX_AGE="600",
        CELERY_BROKER_URL=BROKER_URL,
        LOG_LEVEL="ERROR",
        PYTHONPATH=str(tree),
        DJANGO_SETTINGS_MODULE=os.environ.get("DJANGO_SETTINGS_MODULE", "gavel.settings.local"),
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(overrides)
    with tempfile.TemporaryDirectory() as scratch:
        marker = Path(scratch) / "ready"
        worker = subprocess.Popen(  # noqa: S603 - fixed arguments
            [sys.executable, "-c", WORKER, str(marker)], env=env, cwd=tree
        )
        try:
            deadline = time.monotonic() + 60
            while not marker.exists():
                if time.monotonic() > deadline or worker.poll() is not None:
                    raise RuntimeError(f"{label}: the worker did not start")
                time.sleep(0.1)
            time.sleep(1.0)  # the pool's processes finish importing
            yield
        finally:
            _stop(worker)


def _run_one(label: str, tree: Path, overrides: dict[str, str]) -> float:
    from gavel.celery import app

    with psycopg.connect(_database_url(), autocommit=True) as database:
        _backlog_store(database)
        _queue_purge()
        with _worker(label, tree, overrides):
            database.execute(
                "UPDATE webhooks_webhookevent SET due_at = now() WHERE status = 'pending'"
            )
            started = time.perf_counter()
            with app.connection_for_write(BROKER_URL) as broker:
                app.send_task(DRAIN_TASK, queue="webhooks", connection=broker)
            while _unfinished(database) and time.perf_counter() - started < (DRAIN_TIMEOUT_SECONDS):
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
            left = _unfinished(database)
        row = database.execute(
            "SELECT count(*) FILTER (WHERE status = 'processed'), "
            "(SELECT count(*) FROM webhooks_webhookattempt) FROM webhooks_webhookevent"
        ).fetchone()
    processed, attempts = (int(row[0]), int(row[1])) if row else (0, 0)
    rate = (EVENTS - left) / elapsed
    print(
        f"  {label:<24} {EVENTS - left:>7,} events in {elapsed:6.2f}s = {rate:>7,.0f}/s "
        f"(processed {processed:,}, attempts {attempts:,}, left {left})",
        flush=True,
    )
    return rate


def _lag_one(label: str, tree: Path, overrides: dict[str, str]) -> None:
    """Events stored one by one at LAG_RATE/s for LAG_SECONDS, each followed by a drain
    request, as intake does; lag from storage to processed."""
    from gavel.celery import app
    from gavel.webhooks.envelope import envelope_read
    from gavel.webhooks.models import WebhookEvent
    from gavel.webhooks.services import event_ingest
    from gavel.webhooks.services.drain import drain_signal_reset

    app.conf.update(broker_url=BROKER_URL)  # this process's drain requests go to that worker
    with psycopg.connect(_database_url(), autocommit=True) as database:
        database.execute(
            "TRUNCATE webhooks_webhookattempt, webhooks_webhookobjectcursor, "
            "webhooks_webhookevent, common_outboxmessage"
        )
        _queue_purge()
        drain_signal_reset()
        with _worker(label, tree, overrides):
            started = time.perf_counter()
            sent = 0
            while time.perf_counter() - started < LAG_SECONDS:
                delay = started + sent / LAG_RATE - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                payload = json.loads(_payload(sent, int(time.time())))
                event_ingest(
                    envelope=envelope_read(payload),
                    body=json.dumps(payload),
                    source=WebhookEvent.Source.PLATFORM,
                )
                sent += 1
            rate = sent / (time.perf_counter() - started)
            waited = time.perf_counter()
            while _unfinished(database) and time.perf_counter() - waited < 60:
                time.sleep(0.1)
        lags = sorted(
            float(row[0])
            for row in database.execute(
                "SELECT EXTRACT(EPOCH FROM finished_at - received_at) FROM webhooks_webhookevent "
                "WHERE finished_at IS NOT NULL"
            ).fetchall()
        )

    def percentile(fraction: float) -> float:
        return lags[min(len(lags) - 1, int(fraction * len(lags)))] * 1000 if lags else 0.0

    print(
        f"  {label:<24} {sent:>7,} events at {rate:,.0f}/s: lag p50 {percentile(0.5):,.0f} ms, "
        f"p90 {percentile(0.9):,.0f} ms, p99 {percentile(0.99):,.0f} ms, "
        f"max {percentile(1.0):,.0f} ms; processed {len(lags):,}",
        flush=True,
    )


def main() -> None:
    default_batch = int(settings.WEBHOOK_DRAIN_BATCH_SIZE)
    configurations: list[tuple[str, Path, dict[str, str]]] = []
    if BASELINE_TREE:
        configurations.append((f"baseline {Path(BASELINE_TREE).name}", Path(BASELINE_TREE), {}))
    for item in os.environ.get("BENCH_PROCESSING_BATCHES", "20,default").split(","):
        size = default_batch if item.strip() == "default" else int(item)
        configurations.append((f"batch={size}", REPO, {"WEBHOOK_DRAIN_BATCH_SIZE": str(size)}))
    print(
        f"{EVENTS:,} events of {len(_payload(0, 0).encode()):,} B, celery prefork x{CONCURRENCY}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} "
        "(other processes share these CPUs)",
        flush=True,
    )
    rates: dict[str, list[float]] = {label: [] for label, _, _ in configurations}
    for round_number in range(1, ROUNDS + 1):
        print(f"round {round_number}:", flush=True)
        for label, tree, overrides in configurations:
            rates[label].append(_run_one(label, tree, overrides))
    reference = max(rates[configurations[0][0]])
    print(f"best of {ROUNDS} rounds (ratio to {configurations[0][0]}):")
    for label, values in rates.items():
        best = max(values)
        print(f"  {label:<24} {best:>7,.0f}/s  x{best / reference:.2f}")
    if LAG_RATE > 0:
        print(f"steady load, {LAG_RATE:,.0f} events/s for {LAG_SECONDS:.0f}s, one at a time:")
        for label, tree, overrides in configurations:
            _lag_one(label, tree, overrides)
