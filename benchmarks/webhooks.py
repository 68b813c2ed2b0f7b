"""Webhook intake and processing, over real HTTP on 127.0.0.1, against PostgreSQL.

Measured in one run, on this machine:

1. the PostgreSQL ceiling: single-row autocommit inserts of a row the size of a stored event,
   from 32 client threads (the headline's denominator);
2. intake: signed Stripe-shaped events POSTed by 32 keep-alive clients to gunicorn for
   BENCH_SECONDS: events/s, latency p50/p99, and the ratio to the ceiling (the headline);
3. processing: a Celery worker started on the backlog intake left, events/s until drained;
4. end-to-end lag, storage to processed, under a steady load both sides can sustain (intake
   and processing running together on the same CPUs).

Knobs (environment): BENCH_SECONDS (intake phase, default 8), BENCH_CLIENTS (32),
BENCH_GUNICORN_WORKERS (3), BENCH_GUNICORN_THREADS (8), BENCH_CELERY_CONCURRENCY (6: processing
waits on commits, so more processes than cores),
BENCH_PACED_RATE (events/s of the lag phase, default half the lower of the measured intake and
processing rates),
BENCH_BROKER_URL (redis://127.0.0.1:6379/12).
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
from django.db import connection

from gavel.gateway.webhooks import signature_header

REPO = Path(__file__).resolve().parent.parent
SECRET = "whsec_benchmark_" + secrets.token_hex(8)
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "32"))
INTAKE_SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
CEILING_SECONDS = 6.0
PACED_SECONDS = 8.0
DRAIN_TIMEOUT_SECONDS = 45.0
GUNICORN_WORKERS = int(os.environ.get("BENCH_GUNICORN_WORKERS", "3"))
GUNICORN_THREADS = int(os.environ.get("BENCH_GUNICORN_THREADS", "8"))
CELERY_CONCURRENCY = int(os.environ.get("BENCH_CELERY_CONCURRENCY", "6"))
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/12")
EVENT_TYPE = "benchmark.payment_intent.updated"

# A worker with one handler for the benchmark's type, so each event takes the full path:
# attempt row, event lock, object cursor lock, handler, status.
WORKER = f"""
import django
django.setup()
from gavel.webhooks.registry import webhook_handler

@webhook_handler({EVENT_TYPE!r})
def apply(event):
    pass

from gavel.celery import app
app.worker_main([
    "worker", "--pool=prefork", "--concurrency={CELERY_CONCURRENCY}", "-Q", "webhooks",
    "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=WARNING",
])
"""


def _payload_template() -> dict[str, Any]:
    """A payment_intent.succeeded-sized event (about 3.4 KB, like Stripe's)."""
    data_object = {
        "id": "pi_000",
        "object": "payment_intent",
        "amount": 125000,
        "amount_capturable": 0,
        "application": "ca_" + "a" * 28,
        "amount_details": {"tip": {}},
        "amount_received": 125000,
        "application_fee_amount": 12500,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic",
        "client_secret": "pi_000_secret_" + "x" * 24,
        "confirmation_method": "automatic",
        "created": 1_790_000_000,
        "currency": "usd",
        "customer": "cus_" + "c" * 14,
        "description": "Lot 1432: a 1967 Omega Speedmaster, hammer price",
        "last_payment_error": None,
        "latest_charge": "ch_" + "h" * 24,
        "livemode": False,
        "metadata": {
            "auction_id": "4821",
            "lot_id": "1432",
            "sale_id": "9120",
            "buyer_id": "77120",
            "seller_id": "3310",
            "buyer_premium_bps": "2500",
            "hammer_minor": "100000",
            "premium_minor": "25000",
            "gavel_operation": "sale_payment:9120",
            "lot_title": (
                "Omega Speedmaster Professional ref. 145.012-67, cal. 321, 1967, stainless "
                "steel, black step dial, tritium hands, DON bezel, box and papers, "
                "serviced 2024, from a single-owner collection"
            ),
        },
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": "pm_" + "m" * 24,
        "payment_method_options": {
            "card": {
                "installments": None,
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
                "capture_method": None,
                "setup_future_usage": None,
            },
            "link": {"persistent_token": None},
        },
        "payment_method_configuration_details": {
            "id": "pmc_" + "p" * 24,
            "parent": None,
        },
        "payment_method_types": ["card"],
        "processing": None,
        "review": None,
        "excluded_payment_method_types": None,
        "invoice": None,
        "payment_details": {"customer_reference": None, "order_reference": "sale_9120"},
        "setup_future_usage": None,
        "source": None,
        "receipt_email": "buyer@example.com",
        "shipping": {
            "address": {
                "city": "Brooklyn",
                "country": "US",
                "line1": "350 Fifth Avenue",
                "line2": "Floor 21",
                "postal_code": "11201",
                "state": "NY",
            },
            "carrier": "UPS",
            "name": "Bea Buyer",
            "phone": "+15555550100",
            "tracking_number": "1Z999AA10123456784",
        },
        "statement_descriptor": None,
        "statement_descriptor_suffix": "GAVEL",
        "status": "succeeded",
        "transfer_data": {"destination": "acct_" + "d" * 16},
        "transfer_group": "group_pi_000",
    }
    return {
        "id": "evt_000",
        "object": "event",
        "api_version": "2025-10-29.clover",
        "created": 0,
        "data": {
            "object": data_object,
            "previous_attributes": {
                "amount_received": 0,
                "latest_charge": None,
                "status": "processing",
            },
        },
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": "req_" + "r" * 14, "idempotency_key": "gavel:pi_create:" + "k" * 20},
        "type": EVENT_TYPE,
    }


TEMPLATE = json.dumps(_payload_template(), indent=2)


def _event_body(number: int, run: str) -> bytes:
    body = TEMPLATE.replace("evt_000", f"evt_{run}_{number:09d}")
    body = body.replace("pi_000", f"pi_{run}_{number:09d}")
    return body.replace('"created": 0', f'"created": {int(time.time())}').encode()


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _database_url() -> str:
    settings = connection.settings_dict
    user = settings.get("USER") or "postgres"
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings['NAME']}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ceiling_measure(size_bytes: int) -> float:
    """Rows/s of single-row autocommit inserts, 32 clients, rows of ``size_bytes``."""
    url = _database_url()
    with psycopg.connect(url, autocommit=True) as setup:
        setup.execute("DROP TABLE IF EXISTS bench_ceiling")
        setup.execute(
            "CREATE TABLE bench_ceiling (id bigserial PRIMARY KEY, event_id text UNIQUE, "
            "payload text NOT NULL, received_at timestamptz NOT NULL)"
        )
    payload = "x" * size_bytes
    counts = [0] * CLIENTS
    stop = threading.Event()
    start = threading.Barrier(CLIENTS + 1)

    def insert(index: int) -> None:
        with psycopg.connect(url, autocommit=True) as client:
            start.wait()
            number = 0
            while not stop.is_set():
                client.execute(
                    "INSERT INTO bench_ceiling (event_id, payload, received_at) "
                    "VALUES (%s, %s, now())",
                    (f"evt_{index}_{number}", payload),
                )
                number += 1
            counts[index] = number

    threads = [threading.Thread(target=insert, args=(index,)) for index in range(CLIENTS)]
    for thread in threads:
        thread.start()
    start.wait()
    started = time.perf_counter()
    time.sleep(CEILING_SECONDS)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    with psycopg.connect(url, autocommit=True) as setup:
        setup.execute("DROP TABLE bench_ceiling")
    return sum(counts) / elapsed


def _request_bytes(body: bytes) -> bytes:
    """A signed Stripe delivery, as raw HTTP/1.1 bytes (built before the clock starts)."""
    header = signature_header(payload=body, secret=SECRET, timestamp=int(time.time()))
    head = (
        "POST /webhooks/stripe/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nUser-Agent: Stripe/1.0\r\n"
        f"Stripe-Signature: {header}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class _Connection:
    """One keep-alive connection speaking just enough HTTP/1.1, so the load generator spends
    as little of the shared CPUs as it can."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buffer = b""

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        self.buffer += chunk

    def exchange(self, request: bytes) -> int:
        self.sock.sendall(request)
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(self.buffer) < length:
            self._fill()
        self.buffer = self.buffer[length:]
        return int(head[9:12])

    def close(self) -> None:
        self.sock.close()


class Load:
    """Keep-alive HTTP clients posting signed events; records each request's latency."""

    def __init__(self, port: int, run: str) -> None:
        self.port = port
        self.run = run
        self.sequence = 0
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors = 0

    def _requests(self, count: int) -> list[bytes]:
        with self.lock:
            first = self.sequence
            self.sequence += count
        return [_request_bytes(_event_body(first + index, self.run)) for index in range(count)]

    def run_for(
        self, seconds: float, *, clients: int, rate_per_second: float | None = None
    ) -> float:
        """Post for ``seconds``; as fast as possible, or paced at ``rate_per_second``.
        Returns the elapsed time."""
        stop = threading.Event()
        interval = clients / rate_per_second if rate_per_second else 0.0
        expected_rate = rate_per_second or 2500.0
        per_client = int(expected_rate * seconds / clients * 1.2) + 10
        prepared = [self._requests(per_client) for _ in range(clients)]

        def client_loop(index: int) -> None:
            requests = prepared[index]
            connection = _Connection(self.port)
            latencies: list[float] = []
            errors = 0
            next_at = time.perf_counter() + index * interval / clients
            while not stop.is_set():
                if interval:
                    delay = next_at - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    next_at += interval
                request = requests.pop() if requests else self._requests(1)[0]
                started = time.perf_counter()
                try:
                    status = connection.exchange(request)
                except OSError:
                    errors += 1
                    connection.close()
                    connection = _Connection(self.port)
                    continue
                if status == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1
            connection.close()
            with self.lock:
                self.latencies.extend(latencies)
                self.errors += errors

        threads = [threading.Thread(target=client_loop, args=(index,)) for index in range(clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        stop.set()
        for thread in threads:
            thread.join()
        return time.perf_counter() - started


def _wait_http(port: int, timeout_seconds: float = 30) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            client = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            client.request("GET", "/healthz")
            if client.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


def _counts(cursor: psycopg.Cursor[Any], run: str) -> tuple[int, int]:
    """(stored, unfinished) events of one run ("": every run)."""
    cursor.execute(
        "SELECT count(*), count(*) FILTER (WHERE status IN ('pending', 'retrying')) "
        "FROM webhooks_webhookevent WHERE stripe_event_id LIKE %s",
        (f"evt_{run}_%" if run else "%",),
    )
    total, unfinished = cursor.fetchone() or (0, 0)
    return int(total), int(unfinished)


def _lags(cursor: psycopg.Cursor[Any], run: str) -> list[float]:
    cursor.execute(
        "SELECT EXTRACT(EPOCH FROM finished_at - received_at) FROM webhooks_webhookevent "
        "WHERE stripe_event_id LIKE %s AND finished_at IS NOT NULL",
        (f"evt_{run}_%",),
    )
    return [float(row[0]) for row in cursor.fetchall()]


def _drain(cursor: psycopg.Cursor[Any], run: str) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < DRAIN_TIMEOUT_SECONDS:
        if _counts(cursor, run)[1] == 0:
            break
        time.sleep(0.1)
    return time.perf_counter() - started


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _report_intake(label: str, load: Load, elapsed: float) -> float:
    rate = len(load.latencies) / elapsed
    print(
        f"{label}: {rate:,.0f} events/s over {elapsed:.1f}s, "
        f"p50 {_percentile(load.latencies, 0.5) * 1000:.1f} ms, "
        f"p99 {_percentile(load.latencies, 0.99) * 1000:.1f} ms, errors {load.errors}"
    )
    return rate


def main() -> None:
    from gavel.celery import app

    size = len(_event_body(1, "size"))
    print(
        f"event body {size} B; {CLIENTS} clients; 127.0.0.1; {os.cpu_count()} CPUs; "
        f"load average {os.getloadavg()[0]:.1f} (other processes share these CPUs)"
    )
    ceiling = ceiling_measure(size)
    print(
        f"PostgreSQL ceiling, single-row inserts of {size} B, {CLIENTS} clients: {ceiling:,.0f}/s"
    )

    env = dict(os.environ)
    env.update(
        DATABASE_URL=_database_url(),
        DATABASE_CONN_MAX_AGE="600",
        STRIPE_WEBHOOK_SECRETS=SECRET,
        CELERY_BROKER_URL=BROKER_URL,
        LOG_LEVEL="ERROR",
        PYTHONPATH=str(REPO),
        DJANGO_SETTINGS_MODULE=os.environ.get("DJANGO_SETTINGS_MODULE", "gavel.settings.local"),
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with app.connection_for_write(BROKER_URL) as broker:
        channel: Any = broker.default_channel
        channel.queue_declare(queue="webhooks", durable=True, auto_delete=False)
        channel.queue_purge("webhooks")
    port = _free_port()
    web = subprocess.Popen(  # noqa: S603 - fixed arguments
        [
            sys.executable, "-m", "gunicorn", "gavel.wsgi:application",
            "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread",
            "--workers", str(GUNICORN_WORKERS), "--threads", str(GUNICORN_THREADS),
            "--keep-alive", "30", "--log-level", "warning",
        ],
        env=env, cwd=REPO,
    )  # fmt: skip
    worker: subprocess.Popen[bytes] | None = None
    try:
        _wait_http(port)
        Load(port, "warm").run_for(1.5, clients=CLIENTS)
        with psycopg.connect(_database_url(), autocommit=True) as database:
            cursor = database.cursor()

            # 1. Intake alone, as fast as 32 clients go (the worker is not started yet).
            intake = Load(port, "sat")
            elapsed = intake.run_for(INTAKE_SECONDS, clients=CLIENTS)
            intake_rate = _report_intake(
                f"intake (gunicorn gthread {GUNICORN_WORKERS}x{GUNICORN_THREADS})", intake, elapsed
            )
            _, backlog = _counts(cursor, "sat")

            # 2. Processing capacity: a worker drains that backlog (and the warm-up's).
            _, warm_backlog = _counts(cursor, "warm")
            worker = subprocess.Popen([sys.executable, "-c", WORKER], env=env, cwd=REPO)  # noqa: S603
            drain_seconds = _drain(cursor, "")
            _, left = _counts(cursor, "")
            drained = backlog + warm_backlog - left
            processing_rate = drained / drain_seconds
            print(
                f"processing (celery prefork x{CELERY_CONCURRENCY}, worker start included): "
                f"{drained:,} events in {drain_seconds:.1f}s = {processing_rate:,.0f}/s; "
                f"left {left}"
            )

            # 3. End-to-end lag under a steady load, intake and processing running together.
            paced_rate = float(os.environ.get("BENCH_PACED_RATE", "0")) or 0.5 * min(
                intake_rate, processing_rate
            )
            paced = Load(port, "lag")
            paced_elapsed = paced.run_for(
                PACED_SECONDS, clients=CLIENTS, rate_per_second=paced_rate
            )
            _report_intake("steady load, intake", paced, paced_elapsed)
            _drain(cursor, "lag")
            lags = _lags(cursor, "lag")
            print(
                f"steady load, end-to-end lag (stored -> processed): "
                f"p50 {_percentile(lags, 0.5) * 1000:.0f} ms, "
                f"p99 {_percentile(lags, 0.99) * 1000:.0f} ms, max {max(lags or [0]) * 1000:.0f} ms"
            )
            print(
                f"HEADLINE: intake {intake_rate:,.0f}/s = {intake_rate / ceiling:.0%} of the "
                f"PostgreSQL ceiling {ceiling:,.0f}/s (target >= 50 %); intake p99 "
                f"{_percentile(intake.latencies, 0.99) * 1000:.1f} ms (target < 50 ms); "
                f"processing {processing_rate:,.0f}/s "
                f"= {processing_rate / intake_rate:.0%} of intake"
            )
    finally:
        _stop(web)
        if worker is not None:
            _stop(worker)
