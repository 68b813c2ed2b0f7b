"""Webhook intake and processing, over real HTTP on 127.0.0.1, against PostgreSQL.

Measured in one run, on this machine:

1. the PostgreSQL ceiling: single-row autocommit inserts of a row the size of a stored event,
   from 32 client threads (the headline's denominator);
2. intake: signed Stripe-shaped events (unique ids, fresh timestamps, signed before the clock
   starts) POSTed by 32 keep-alive connections for BENCH_SECONDS, to each intake server in
   BENCH_INTAKE_SERVERS in turn: events/s, latency p50/p99, and the ratio to the ceiling. The
   load comes from ``wrk`` when it is installed (a Lua script cycling through the pre-signed
   raw requests, so the client costs little of the shared CPUs), else from Python threads; the
   line says which. The last server listed is production's (``make serve``) and the headline's;
3. processing: a Celery worker started on the backlog intake left, events/s until drained;
4. end-to-end lag, storage to processed, under a steady load both sides can sustain (intake
   and processing running together on the same CPUs; paced Python clients).

Intake servers: ``uvicorn`` (gavel.asgi: the intake process, lean ASGI intake with group commit,
uvloop and httptools, BENCH_UVICORN_WORKERS processes; what production serves the webhook
paths with) and ``gunicorn`` (gavel.wsgi: the API's server, where the same paths are the
Django views storing one event per request; gthread BENCH_GUNICORN_WORKERS x
BENCH_GUNICORN_THREADS), measured side by side.

Knobs (environment): BENCH_SECONDS (intake phase, default 8), BENCH_CLIENTS (32),
BENCH_INTAKE_SERVERS (gunicorn,uvicorn), BENCH_UVICORN_WORKERS (2), BENCH_GUNICORN_WORKERS (3),
BENCH_GUNICORN_THREADS (8), BENCH_LOAD (wrk or python; wrk when installed), BENCH_WRK_THREADS
(2), BENCH_CELERY_CONCURRENCY (6: processing waits on commits, so more processes than cores),
BENCH_PACED_RATE (events/s of the lag phase, default half the lower of the measured intake and
processing rates), BENCH_BROKER_URL (redis://127.0.0.1:6379/12).
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
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
INTAKE_SERVERS = os.environ.get("BENCH_INTAKE_SERVERS", "gunicorn,uvicorn").split(",")
UVICORN_WORKERS = int(os.environ.get("BENCH_UVICORN_WORKERS", "2"))
GUNICORN_WORKERS = int(os.environ.get("BENCH_GUNICORN_WORKERS", "3"))
LOAD = os.environ.get("BENCH_LOAD", "wrk" if shutil.which("wrk") else "python")
WRK_THREADS = int(os.environ.get("BENCH_WRK_THREADS", "2"))
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


@dataclass(frozen=True)
class IntakeFigures:
    rate_per_second: float
    p50_seconds: float
    p99_seconds: float
    errors: int
    elapsed_seconds: float
    note: str = ""


# Each wrk thread reads its own file of pre-signed raw requests (NUL-separated) and sends each
# once; a thread that runs out stops rather than repeat one (a duplicate takes the cheap path).
WRK_SCRIPT = """
local requests, index = {}, 0
ran_out = 0
local threads, counter = {}, 1

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local file = io.open(os.getenv("BENCH_REQUESTS_PREFIX") .. id, "rb")
  local data = file:read("*a")
  file:close()
  local start = 1
  while true do
    local stop = string.find(data, "\\0", start, true)
    if not stop then break end
    requests[#requests + 1] = string.sub(data, start, stop - 1)
    start = stop + 1
  end
end

function request()
  index = index + 1
  if index > #requests then
    ran_out = 1
    wrk.thread:stop()
    index = #requests
  end
  return requests[index]
end

function done(summary, latency, requests)
  local exhausted = 0
  for _, thread in ipairs(threads) do exhausted = exhausted + thread:get("ran_out") end
  local errors = summary.errors
  io.write(string.format(
    "WRK_RESULT %d %d %d %d %d %d %d %d %d %d\\n",
    summary.requests, summary.duration, errors.connect, errors.read, errors.write,
    errors.status, errors.timeout, latency:percentile(50), latency:percentile(99), exhausted))
end
"""


class WrkLoad:
    """``wrk`` posting pre-signed events as fast as it can over keep-alive connections."""

    def __init__(self, port: int, run: str) -> None:
        self.port = port
        self.run = run

    def run_for(self, seconds: float, *, clients: int, expected_rate: float) -> IntakeFigures:
        per_thread = int(expected_rate * seconds * 1.3 / WRK_THREADS) + 100
        with tempfile.TemporaryDirectory(prefix="gavel-bench-") as directory:
            prefix = os.path.join(directory, "requests.")
            for thread in range(WRK_THREADS):
                first = thread * per_thread
                with open(f"{prefix}{thread + 1}", "wb") as file:
                    for number in range(first, first + per_thread):
                        file.write(_request_bytes(_event_body(number, self.run)) + b"\0")
            script = os.path.join(directory, "intake.lua")
            with open(script, "w") as file:
                file.write(WRK_SCRIPT)
            completed = subprocess.run(  # noqa: S603 - fixed arguments
                [
                    shutil.which("wrk") or "wrk", "-t", str(WRK_THREADS), "-c", str(clients),
                    "-d", f"{max(1, round(seconds))}s",
                    "--timeout", "30s", "-s", script,
                    f"http://127.0.0.1:{self.port}/webhooks/stripe/",
                ],
                env={**os.environ, "BENCH_REQUESTS_PREFIX": prefix},
                capture_output=True, text=True, check=False,
            )  # fmt: skip
        if completed.returncode != 0:
            raise RuntimeError(f"wrk failed: {completed.stderr or completed.stdout}")
        line = next(line for line in completed.stdout.splitlines() if line.startswith("WRK_RESULT"))
        requests, duration_us, *errors, p50_us, p99_us, exhausted = map(int, line.split()[1:])
        elapsed = duration_us / 1e6
        error_count = sum(errors)
        return IntakeFigures(
            rate_per_second=(requests - errors[3]) / elapsed,
            p50_seconds=p50_us / 1e6,
            p99_seconds=p99_us / 1e6,
            errors=error_count,
            elapsed_seconds=elapsed,
            note=f" ({exhausted} wrk threads ran out of prepared events)" if exhausted else "",
        )


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


def _report_intake(label: str, figures: IntakeFigures) -> None:
    print(
        f"{label}: {figures.rate_per_second:,.0f} events/s over {figures.elapsed_seconds:.1f}s, "
        f"p50 {figures.p50_seconds * 1000:.1f} ms, p99 {figures.p99_seconds * 1000:.1f} ms, "
        f"errors {figures.errors}{figures.note}"
    )


def _python_figures(load: Load, elapsed: float) -> IntakeFigures:
    return IntakeFigures(
        rate_per_second=len(load.latencies) / elapsed,
        p50_seconds=_percentile(load.latencies, 0.5),
        p99_seconds=_percentile(load.latencies, 0.99),
        errors=load.errors,
        elapsed_seconds=elapsed,
    )


def _intake_measure(port: int, run: str) -> tuple[IntakeFigures, str]:
    """Intake as fast as CLIENTS connections go; the figures and the load generator's name."""
    if LOAD == "wrk":
        expected = float(os.environ.get("BENCH_WRK_EXPECTED_RATE", "12000"))
        figures = WrkLoad(port, run).run_for(
            INTAKE_SECONDS, clients=CLIENTS, expected_rate=expected
        )
        return figures, f"wrk -t{WRK_THREADS}"
    load = Load(port, run)
    return _python_figures(load, load.run_for(INTAKE_SECONDS, clients=CLIENTS)), "python threads"


def _server_command(name: str, port: int) -> tuple[list[str], str]:
    if name == "uvicorn":
        return [
            sys.executable, "-m", "uvicorn", "gavel.asgi:application",
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(UVICORN_WORKERS),
            "--loop", "uvloop", "--http", "httptools", "--no-access-log",
            "--log-level", "warning", "--timeout-keep-alive", "30",
        ], f"uvicorn gavel.asgi x{UVICORN_WORKERS}"  # fmt: skip
    if name == "gunicorn":
        return [
            sys.executable, "-m", "gunicorn", "gavel.wsgi:application",
            "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread",
            "--workers", str(GUNICORN_WORKERS), "--threads", str(GUNICORN_THREADS),
            "--keep-alive", "30", "--log-level", "warning",
        ], f"gunicorn gavel.wsgi gthread {GUNICORN_WORKERS}x{GUNICORN_THREADS}"  # fmt: skip
    raise ValueError(f"unknown intake server {name!r} (uvicorn or gunicorn)")


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
    web: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None
    try:
        # 1. Intake alone, as fast as CLIENTS connections go, per server (no worker yet).
        intake: IntakeFigures | None = None
        port = 0
        for position, name in enumerate(INTAKE_SERVERS):
            port = _free_port()
            command, label = _server_command(name, port)
            web = subprocess.Popen(command, env=env, cwd=REPO)  # noqa: S603 - fixed arguments
            _wait_http(port)
            Load(port, f"warm{position}").run_for(1.5, clients=CLIENTS)
            intake, generator = _intake_measure(port, f"sat{position}")
            _report_intake(f"intake ({label}; load: {generator})", intake)
            if position < len(INTAKE_SERVERS) - 1:
                _stop(web)
                web = None
        assert intake is not None
        with psycopg.connect(_database_url(), autocommit=True) as database:
            cursor = database.cursor()

            # 2. Processing capacity: a worker drains the backlog every intake run left.
            _, backlog = _counts(cursor, "")
            worker = subprocess.Popen([sys.executable, "-c", WORKER], env=env, cwd=REPO)  # noqa: S603
            drain_seconds = _drain(cursor, "")
            _, left = _counts(cursor, "")
            drained = backlog - left
            processing_rate = drained / drain_seconds
            print(
                f"processing (celery prefork x{CELERY_CONCURRENCY}, worker start included): "
                f"{drained:,} events in {drain_seconds:.1f}s = {processing_rate:,.0f}/s; "
                f"left {left}"
            )

            # 3. End-to-end lag under a steady load, intake and processing running together,
            # on the last (production's) intake server.
            paced_rate = float(os.environ.get("BENCH_PACED_RATE", "0")) or 0.5 * min(
                intake.rate_per_second, processing_rate
            )
            paced = Load(port, "lag")
            paced_elapsed = paced.run_for(
                PACED_SECONDS, clients=CLIENTS, rate_per_second=paced_rate
            )
            _report_intake(
                f"steady load {paced_rate:,.0f}/s, intake", _python_figures(paced, paced_elapsed)
            )
            _drain(cursor, "lag")
            lags = _lags(cursor, "lag")
            print(
                f"steady load, end-to-end lag (stored -> processed): "
                f"p50 {_percentile(lags, 0.5) * 1000:.0f} ms, "
                f"p99 {_percentile(lags, 0.99) * 1000:.0f} ms, max {max(lags or [0]) * 1000:.0f} ms"
            )
            rate = intake.rate_per_second
            print(
                f"HEADLINE ({INTAKE_SERVERS[-1]}): intake {rate:,.0f}/s = {rate / ceiling:.0%} of "
                f"the PostgreSQL ceiling {ceiling:,.0f}/s (target >= 50 %); intake p99 "
                f"{intake.p99_seconds * 1000:.1f} ms (target < 50 ms); "
                f"processing {processing_rate:,.0f}/s = {processing_rate / rate:.0%} of intake"
            )
    finally:
        if web is not None:
            _stop(web)
        if worker is not None:
            _stop(worker)
