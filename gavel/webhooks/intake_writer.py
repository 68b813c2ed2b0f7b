"""Group commit for webhook intake: concurrent deliveries are stored by one statement and one
commit, and each request is woken with its own result before it answers.

The intake process (``intake_asgi.py``) runs one event loop; a request awaits
``intake_writer().store(row)``. WEBHOOK_INTAKE_WRITER_CONNECTIONS writer tasks, each with its
own psycopg connection, take whatever rows are waiting (at most WEBHOOK_INTAKE_BATCH_MAX_ROWS;
they wait up to WEBHOOK_INTAKE_BATCH_MAX_WAIT_MS for more only when that is above zero) and
store them with the statements of ``services.ingest.store_plan`` in one transaction: an
``INSERT ... ON CONFLICT DO NOTHING RETURNING`` and, for duplicates, one UPDATE that counts
them. While one batch waits for its commit, the next gathers, so batches grow with the load and
a lone event is written at once.

After the commit the writer requests a drain (once per batch, in a thread of its own since
``drain_request`` is synchronous), then resolves each request's future: the 200 comes after the
commit and the drain request, as in the Django views. If the batch fails (a database error, the
statement timeout WEBHOOK_INTAKE_WRITE_TIMEOUT_SECONDS), its transaction is rolled back, every
request in it gets ``IntakeUnavailable`` (a 503: Stripe delivers again) and the writer reconnects
for the next batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection
from django.utils import timezone

from gavel.webhooks.services.drain import drain_request
from gavel.webhooks.services.ingest import (
    EventRow,
    IngestResult,
    ingest_results_record,
    store_plan,
)

logger = logging.getLogger(__name__)

# Django's own connection parameters that psycopg does not take (or that are left at psycopg's
# defaults: prepared statements help the few INSERT shapes a writer repeats).
_DJANGO_ONLY_PARAMETERS = ("cursor_factory", "context", "prepare_threshold")


class IntakeUnavailable(Exception):
    """The batch holding this delivery was not committed; answer 503 so Stripe retries."""


@dataclass(slots=True)
class _Pending:
    row: EventRow
    future: asyncio.Future[IngestResult]


def _drain_request_logged() -> None:
    try:
        drain_request()
    except Exception as error:  # noqa: BLE001 - the events are stored; the sweeper requests a drain
        logger.error("drain request failed", extra={"error": repr(error)[:500]})
        connection.close()


def _connection_close() -> None:
    connection.close()  # this thread's connection (``connection`` resolves per thread)


class IntakeWriter:
    """Writer tasks on the running event loop, each with its own connection, taking batches
    from one queue (created on first use, in the loop that uses it)."""

    def __init__(
        self,
        *,
        connections: int,
        max_rows: int,
        max_wait_seconds: float,
        statement_timeout_ms: int,
    ) -> None:
        self.connections = max(1, connections)
        self.max_rows = max(1, max_rows)
        self.max_wait_seconds = max(0.0, max_wait_seconds)
        self.statement_timeout_ms = statement_timeout_ms
        self.batch_sizes: list[int] = []  # the last batches written (tests, diagnostics)
        parameters = connection.get_connection_params()
        self._parameters = {
            name: value for name, value in parameters.items() if name not in _DJANGO_ONLY_PARAMETERS
        }
        self._queue: asyncio.Queue[_Pending] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        # drain_request is synchronous (Redis, the outbox): one thread of its own does it.
        self._drain_executor = ThreadPoolExecutor(1, thread_name_prefix="webhook-intake-drain")

    async def store(self, row: EventRow) -> IngestResult:
        """Store ``row`` with the next batch; returns after its commit, or raises
        ``IntakeUnavailable`` when that batch failed."""
        loop = asyncio.get_running_loop()
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._tasks = [
                loop.create_task(self._run(self._queue)) for _ in range(self.connections)
            ]
        future: asyncio.Future[IngestResult] = loop.create_future()
        self._queue.put_nowait(_Pending(row, future))
        return await future

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._queue = None
        # The drain thread's own database connection goes with it.
        await asyncio.get_running_loop().run_in_executor(self._drain_executor, _connection_close)
        self._drain_executor.shutdown(wait=True)

    async def _batch_next(self, pending_queue: asyncio.Queue[_Pending]) -> list[_Pending]:
        batch = [await pending_queue.get()]
        deadline = time.monotonic() + self.max_wait_seconds
        while len(batch) < self.max_rows:
            if not pending_queue.empty():
                batch.append(pending_queue.get_nowait())
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(pending_queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        database = await psycopg.AsyncConnection.connect(**self._parameters, autocommit=True)
        await database.execute(f"SET statement_timeout = {int(self.statement_timeout_ms)}")
        return database

    async def _run(self, pending_queue: asyncio.Queue[_Pending]) -> None:
        database: psycopg.AsyncConnection[Any] | None = None
        try:
            while True:
                batch = await self._batch_next(pending_queue)
                rows = [pending.row for pending in batch]
                try:
                    if database is None or database.closed:
                        database = await self._connect()
                    results = await self._write(database, rows)
                except Exception as error:  # noqa: BLE001 - the writer outlives any batch; each request gets a 503
                    logger.error(
                        "webhook intake batch not stored",
                        extra={"rows": len(rows), "error": repr(error)[:500]},
                    )
                    if database is not None:
                        await database.close()
                    database = None
                    for pending in batch:
                        if not pending.future.done():
                            pending.future.set_exception(IntakeUnavailable(repr(error)[:200]))
                    continue
                self.batch_sizes = [*self.batch_sizes[-99:], len(rows)]
                if ingest_results_record(rows, results):
                    loop = asyncio.get_running_loop()
                    await loop.run_in_executor(self._drain_executor, _drain_request_logged)
                for pending, result in zip(batch, results, strict=True):
                    if not pending.future.done():
                        pending.future.set_result(result)
        finally:
            if database is not None:
                await database.close()

    async def _write(
        self, database: psycopg.AsyncConnection[Any], rows: list[EventRow]
    ) -> list[IngestResult]:
        # $n placeholders and a raw cursor: psycopg would otherwise parse the statement's
        # hundreds of %s placeholders on every batch (most of the writer's CPU, measured).
        plan = store_plan(rows, timezone.now(), numbered=True)
        async with database.transaction():
            cursor = psycopg.AsyncRawCursor(database)
            await cursor.execute(plan.insert_sql, plan.insert_parameters)
            stored = {event_id: int(pk) for pk, event_id in await cursor.fetchall()}
            results, duplicates_update = plan.results(rows, stored)
            if duplicates_update is not None:
                await cursor.execute(*duplicates_update)
        return results


# One writer per event loop: one in an intake process; tests may run servers side by side.
_writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, IntakeWriter] = (
    weakref.WeakKeyDictionary()
)


def intake_writer() -> IntakeWriter:
    """The running event loop's writer, made on first use from the settings then in force."""
    loop = asyncio.get_running_loop()
    writer = _writers.get(loop)
    if writer is None:
        writer = _writers[loop] = IntakeWriter(
            connections=settings.WEBHOOK_INTAKE_WRITER_CONNECTIONS,
            max_rows=settings.WEBHOOK_INTAKE_BATCH_MAX_ROWS,
            max_wait_seconds=settings.WEBHOOK_INTAKE_BATCH_MAX_WAIT_MS / 1000,
            statement_timeout_ms=settings.WEBHOOK_INTAKE_WRITE_TIMEOUT_SECONDS * 1000,
        )
    return writer


async def intake_writer_close() -> None:
    """Stop the running loop's writer (ASGI lifespan shutdown)."""
    writer = _writers.pop(asyncio.get_running_loop(), None)
    if writer is not None:
        await writer.close()
