"""The legacy import, end to end: stage one (read, stage, quarantine), stage two (load).

A run is resumable: each page of each table is staged in one transaction together with its
checkpoint (the last key), so a run killed at any point continues after the last committed
page; stage two keeps its own checkpoints the same way. A second run over unchanged legacy
data stages nothing new and so loads nothing. A dry run does all of it in one transaction
and rolls it back, reporting what it would have done.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Max, Model
from django.utils import timezone
from tqdm import tqdm

from gavel.legacy.checks import (
    history_checks_run,
    posted_checks_run,
    quarantine_refresh,
    reference_checks_run,
    row_anomalies_resolve,
    row_checks_run,
)
from gavel.legacy.connections import LegacyDatabase
from gavel.legacy.indexes import DEFERRABLE, IndexBuilt, indexes_defer, indexes_restore
from gavel.legacy.listings import (
    ListingsPage,
    listings_order_lines_link,
    listings_page_load,
    listings_page_next,
)
from gavel.legacy.loader import (
    LedgerPage,
    account_cache_clear,
    buyer_customers_load,
    connected_accounts_load,
    id_map_refresh,
    ledger_page_load,
    ledger_page_plan,
    ledger_page_post,
    ledger_split_key,
    seller_accounts_kept,
    users_load,
)
from gavel.legacy.models import ImportCheckpoint, ImportRun, LegacyAnomaly
from gavel.legacy.orders import orders_page_load, orders_split_key
from gavel.legacy.reader import (
    SPECS_BY_TABLE,
    LegacySource,
    TableSpec,
    key_initial,
    page_anomalies,
)
from gavel.legacy.staging import (
    STAGING_MODELS,
    UpsertResult,
    anomalies_record,
    staging_copy,
    staging_encoding,
    staging_is_new_range,
    staging_types,
    staging_upsert,
)

logger = logging.getLogger(__name__)
PageT = TypeVar("PageT")

# Stage one's lanes: the history (the largest table), the payments, and every other table.
# Each lane's relay keeps its two database connections and its thread waiting on each other
# part of the time: with two lanes on two cores a tenth of the machine stayed idle.
STAGE_LANES: tuple[tuple[str, ...], ...] = (
    ("transaction_transitions",),
    ("people", "stripe_accounts", "payment_settings", "listings", "transactions"),
    ("stripe_payments",),
)  # fmt: skip
CHECKS = "stage:checks"
CHECKS_HISTORY = "stage:checks:history"
CHECKS_REFERENCES = "stage:checks:references"
LOAD_USERS = "load:people"
LOAD_ACCOUNTS = "load:connected_accounts"
LOAD_CUSTOMERS = "load:buyer_customers"
LOAD_LEDGER = "load:stripe_payments"
LOAD_ORDERS = "load:transactions"
LOAD_ORDERS_TAIL = "load:transactions:tail"
# The share of the orders loaded in the third lane (LOAD_ORDERS_TAIL). On one million payments
# with two cores the ledger took 90 s, the orders 126 s and the third lane's steps 43 s: the
# orders ran alone at the end, one core idle.
ORDERS_TAIL_SHARE = 0.35
# The share of the captured payments posted in the third lane (LOAD_LEDGER_TAIL), after the
# orders' tail. With the connected accounts and customers written set-based the third lane
# ended 10 s before the ledger on one million payments (ledger 60 s, orders 55 s, third 49 s).
# After the ledger's lines stopped going through a table of their own, its head lane ended
# about 3 s before the third (ledger 50.6 s, orders 51.8 s, third 55 s): a smaller tail.
LOAD_LEDGER_TAIL = "load:stripe_payments:tail"
LEDGER_TAIL_SHARE = 0.06
LOAD_ID_MAP = "load:id_map"
LOAD_LISTINGS = "load:listings"
LINK_LISTINGS = "load:listing_order_lines"
LINK_PARTS = 2  # the listing links in halves side by side
DEFER_INDEXES = "load:indexes_deferred"
RESTORE_INDEXES = "load:indexes_built"
STAGE_DEFER_INDEXES = "stage:indexes_deferred"
STAGE_RESTORE_INDEXES = "stage:indexes_built"


class _DryRunRollback(Exception):
    """Raised at the end of a dry run to roll its one transaction back."""


@dataclass(slots=True)
class ImportOptions:
    mode: ImportRun.Mode = ImportRun.Mode.FULL
    is_dry_run: bool = False
    batch_size: int = 0  # 0: settings.LEGACY_IMPORT_BATCH_SIZE
    since: datetime | None = None  # delta: default, the last completed run's watermark
    is_resumable: bool = True  # continue the last unfinished run rather than start anew
    show_progress: bool = False
    ledger_via_services: bool = False
    # The reference path of stage one: rows read as Python records and checked by
    # ``reader.ROW_CHECKS``; a test proves the COPY path (checked in SQL) stages the same rows
    # and finds the same anomalies.
    records_in_python: bool = False


def legacy_import(*, database: LegacyDatabase, options: ImportOptions) -> ImportRun:
    """Run (or resume) an import and return its finished ``ImportRun``."""
    # Ledger account ids are cached per import: a rolled-back (dry) run must not leave ids of
    # accounts that were never committed.
    account_cache_clear()
    try:
        with LegacySource(database) as source:
            if not options.is_dry_run:
                return _Importer(source, options).run()
            outcome: list[ImportRun] = []
            try:
                with transaction.atomic():
                    outcome.append(_Importer(source, options).run())
                    raise _DryRunRollback
            except _DryRunRollback:
                pass
            return outcome[0]
    finally:
        account_cache_clear()


class _Importer:
    def __init__(self, source: LegacySource, options: ImportOptions) -> None:
        self.source = source
        self.options = options
        self.batch_size = options.batch_size or settings.LEGACY_IMPORT_BATCH_SIZE
        self.seconds: dict[str, float] = {}  # wall time per step, this process only
        self.lane = threading.local()  # a lane thread's own legacy connection
        self.thread = threading.current_thread()  # the one that owns ``source``

    # ---- the run ----------------------------------------------------------------------------
    def run(self) -> ImportRun:
        session_tune()
        try:
            return self._run()
        finally:
            session_untune()

    def _run(self) -> ImportRun:
        run = self._run_open()
        scope_after = self._scope_after(run)
        since = run.since if run.mode == ImportRun.Mode.DELTA else None
        # A first run fills empty staging tables: their secondary indexes are built after
        # stage one (ADR 0011), before the checks that read them.
        if self._step_pending(run, STAGE_DEFER_INDEXES):
            with self._timed(STAGE_DEFER_INDEXES):
                deferred = self._indexes_defer(run, scope_after, STAGING_MODELS.values())
                self._step_done(run, STAGE_DEFER_INDEXES, changed=len(deferred))
        # Stage one in two lanes, each table on its lane's own legacy and Gavel connections:
        # the history (the largest table) beside everything else.
        self._side_by_side(
            *(
                [
                    (table, functools.partial(self._table_stage, run, SPECS_BY_TABLE[table], since))
                    for table in lane
                ]
                for lane in STAGE_LANES
            )
        )
        if self._step_pending(run, STAGE_RESTORE_INDEXES):
            self._indexes_build(run, STAGE_RESTORE_INDEXES, tables=STAGING_TABLES)
        if self._step_pending(run, CHECKS):
            with self._timed(CHECKS):
                self._checks_run(run, scope_after)
        self._users_load(run, scope_after)  # when the checks' lanes did not load them
        if self._step_pending(run, DEFER_INDEXES):
            with self._timed(DEFER_INDEXES):
                deferred = self._indexes_defer(run, scope_after)
                self._step_done(run, DEFER_INDEXES, changed=len(deferred))
        # After the users, the ledger, the orders, and the catalogue with the Stripe ids read
        # staging and write apart (ledger tables, payments tables, listings, connect and
        # auctions; each step its own checkpoints): three lanes side by side, each on its own
        # database connection.
        # The orders take longest: their last ORDERS_TAIL_SHARE goes to the third lane, after
        # the catalogue and the Stripe ids, so that no core waits for the orders alone.
        split = orders_split_key(scope_after=scope_after, share=ORDERS_TAIL_SHARE)
        # The services path posts every payment in the head's step.
        ledger_split = (
            None
            if self.options.ledger_via_services
            else ledger_split_key(scope_after=scope_after, share=LEDGER_TAIL_SHARE)
        )
        self._side_by_side(
            [
                (
                    LOAD_LEDGER,
                    lambda: self._ledger_load(run, scope_after, LOAD_LEDGER, 0, ledger_split),
                )
            ],
            [(LOAD_ORDERS, lambda: self._orders_load(run, scope_after, LOAD_ORDERS, 0, split))],
            [
                (LOAD_LISTINGS, lambda: self._listings_load(run, scope_after)),
                (LOAD_ACCOUNTS, lambda: self._accounts_load(run, scope_after)),
                (LOAD_CUSTOMERS, lambda: self._customers_load(run, scope_after)),
                (
                    LOAD_ORDERS_TAIL,
                    lambda: self._orders_load(run, scope_after, LOAD_ORDERS_TAIL, split, None),
                ),
                (
                    LOAD_LEDGER_TAIL,
                    lambda: self._ledger_load(
                        run, scope_after, LOAD_LEDGER_TAIL, ledger_split or 0, None
                    ),
                ),
            ],
        )
        # The links join order lines by hash: they need none of the deferred indexes, and
        # the link table's own are deferred with them (a first run's links fill it).
        if self._step_pending(run, LINK_LISTINGS):
            with self._timed(LINK_LISTINGS):
                self._listings_link(run, scope_after)
        self._id_map_load(run, scope_after)  # when the links' lanes did not build it
        if self._step_pending(run, RESTORE_INDEXES):
            self._indexes_build(run, RESTORE_INDEXES, tables=None)
        return self._run_close(run)

    def _indexes_defer(
        self, run: ImportRun, scope_after: int, written: Iterable[type[Model]] = DEFERRABLE
    ) -> list[str]:
        """A first run defers the secondary indexes and foreign keys of the empty tables it
        fills (ADR 0011, ADR 0012); not a later run, not with ``LEGACY_IMPORT_DEFER_INDEXES``
        off, and not inside an open transaction (a dry run, a caller's): it would hold the
        tables locked to its end, and its deferred foreign key checks would keep the indexes
        from being built in it."""
        if connection.in_atomic_block or scope_after or not settings.LEGACY_IMPORT_DEFER_INDEXES:
            return []
        return indexes_defer(run=run, written=written)

    def _indexes_build(self, run: ImportRun, step: str, tables: Collection[str] | None) -> None:
        """Every index and foreign key still recorded as deferred (of ``tables`` when given;
        this run's, or one an earlier run left), two at a time; none inside an open
        transaction, which defers none."""
        with self._timed(step):
            built: list[IndexBuilt] = []
            if not connection.in_atomic_block:
                self._side_by_side(
                    *[
                        [(f"{step}:{lane}", lambda: built.extend(indexes_restore(tables=tables)))]
                        for lane in (1, 2)
                    ]
                )
            self._step_done(run, step, changed=len(built))

    def _checks_run(self, run: ImportRun, scope_after: int) -> None:
        """The cross-table checks in two halves side by side (each in its own transaction;
        both add anomalies idempotently, so a run killed between them runs both again), then
        the quarantine flags with the step's checkpoint."""
        # Statistics for the checks in two lanes: the history and the transactions beside the
        # other tables (on one million payments the history alone took 0.2 s, the rest 1.0 s).
        first = tuple(
            STAGING_MODELS[table]._meta.db_table
            for table in ("transaction_transitions", "transactions")
        )
        self._side_by_side(
            [(f"{CHECKS}:analyze:1", lambda: _tables_analyze(first))],
            [
                (
                    f"{CHECKS}:analyze:2",
                    lambda: _tables_analyze(tuple(t for t in STAGING_TABLES if t not in first)),
                )
            ],
        )

        def history() -> None:
            with transaction.atomic():
                history_checks_run(
                    run_id=run.pk,
                    scope_after=scope_after,
                    watermark=run.watermark,
                    stuck_hours=settings.LEGACY_STUCK_REQUIRES_ACTION_HOURS,
                )

        def references() -> None:
            with transaction.atomic():
                reference_checks_run(run_id=run.pk, scope_after=scope_after)
                posted_checks_run(run_id=run.pk, scope_after=scope_after)

        # The users load reads staging only (not the checks' anomalies): it follows the
        # shorter half.
        self._side_by_side(
            [(CHECKS_HISTORY, history)],
            [
                (CHECKS_REFERENCES, references),
                (LOAD_USERS, functools.partial(self._users_load, run, scope_after)),
            ],
        )
        with transaction.atomic():
            quarantine_refresh()
            self._step_done(run, CHECKS)

    def _users_load(self, run: ImportRun, scope_after: int) -> None:
        if not self._step_pending(run, LOAD_USERS):
            return
        with self._timed(LOAD_USERS):
            with transaction.atomic():
                result = users_load(run=run, scope_after=scope_after)
                self._step_done(run, LOAD_USERS, changed=result["users_changed"])
            _tables_analyze(("users_user",))  # the loads join by it, 100,000 rows a page

    def _listings_link(self, run: ImportRun, scope_after: int) -> None:
        """The order lines' listing links in two disjoint halves side by side, each in its own
        transaction (both idempotent: a run killed between them links both again)."""
        linked = [0] * LINK_PARTS

        def link(part: int) -> None:
            with transaction.atomic():
                linked[part] = listings_order_lines_link(
                    run=run, scope_after=scope_after, part=part, parts=LINK_PARTS
                )

        lanes = [
            [(f"{LINK_LISTINGS}:{part + 1}", functools.partial(link, part))]
            for part in range(LINK_PARTS)
        ]
        # The id map reads staging and the users, accounts and listings, not the links: a lane
        # of its own beside them (after the second half, it ran alone for a few seconds, one
        # core idle).
        lanes.append([(LOAD_ID_MAP, functools.partial(self._id_map_load, run, scope_after))])
        self._side_by_side(*lanes)
        with transaction.atomic():
            self._step_done(run, LINK_LISTINGS, changed=sum(linked))

    def _id_map_load(self, run: ImportRun, scope_after: int) -> None:
        if not self._step_pending(run, LOAD_ID_MAP):
            return
        with self._timed(LOAD_ID_MAP), transaction.atomic():
            added = id_map_refresh(scope_after=scope_after)
            self._step_done(run, LOAD_ID_MAP, changed=added)

    def _accounts_load(self, run: ImportRun, scope_after: int) -> None:
        if self._step_pending(run, LOAD_ACCOUNTS):
            with transaction.atomic():
                accounts = connected_accounts_load(run=run, scope_after=scope_after)
                self._step_done(run, LOAD_ACCOUNTS, changed=accounts["created"])

    def _customers_load(self, run: ImportRun, scope_after: int) -> None:
        if self._step_pending(run, LOAD_CUSTOMERS):
            with transaction.atomic():
                customers = buyer_customers_load(run=run, scope_after=scope_after)
                self._step_done(run, LOAD_CUSTOMERS, changed=customers["created"])

    def _side_by_side(self, *lanes: Sequence[tuple[str, Callable[[], None]]]) -> None:
        """Run lanes of independent steps in threads, each lane's steps in order on its own
        database connection (and so in its own transactions). Inside an open transaction (a
        dry run, a test) another connection could not see what it holds, so every step runs
        in line."""

        def lane_run(lane: Sequence[tuple[str, Callable[[], None]]]) -> None:
            try:
                if threaded:
                    session_tune()
                with seller_accounts_kept():
                    for step, load in lane:
                        with self._timed(step):
                            load()
            finally:
                if threaded:
                    db_connection_close()
                    source: LegacySource | None = getattr(self.lane, "source", None)
                    if source is not None:
                        source.close()
                        self.lane.source = None

        threaded = not connection.in_atomic_block
        if not threaded:
            for lane in lanes:
                lane_run(lane)
            return
        with ThreadPoolExecutor(max_workers=len(lanes), thread_name_prefix="legacy-load") as pool:
            for future in [pool.submit(lane_run, lane) for lane in lanes]:
                future.result()

    def _source(self) -> LegacySource:
        """The legacy connection of this thread: a lane's own, opened when first needed."""
        if threading.current_thread() is self.thread:
            return self.source
        source: LegacySource | None = getattr(self.lane, "source", None)
        if source is None:
            source = self.lane.source = LegacySource(self.source.database)
        return source

    @contextmanager
    def _timed(self, step: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[step] = round(time.perf_counter() - started, 3)

    def _run_open(self) -> ImportRun:
        options = self.options
        if options.is_resumable and not options.is_dry_run:
            unfinished = (
                ImportRun.objects.filter(status=ImportRun.Status.RUNNING, is_dry_run=False)
                .order_by("-pk")
                .first()
            )
            if unfinished is not None:
                logger.info("legacy import: resuming run %s", unfinished.pk)
                return unfinished
        since = options.since
        if options.mode == ImportRun.Mode.DELTA and since is None:
            last = (
                ImportRun.objects.filter(status=ImportRun.Status.COMPLETED, is_dry_run=False)
                .order_by("-pk")
                .first()
            )
            if last is not None:
                since = last.watermark - timedelta(seconds=settings.LEGACY_DELTA_OVERLAP_SECONDS)
        database = self.source.database
        return ImportRun.objects.create(
            mode=options.mode,
            is_dry_run=options.is_dry_run,
            source=f"{database.dialect}://{database.host}:{database.port}/{database.name}",
            watermark=self.source.clock(),
            since=since,
        )

    def _scope_after(self, run: ImportRun) -> int:
        """Stage two loads what was staged after the last completed run."""
        last = ImportRun.objects.filter(
            status=ImportRun.Status.COMPLETED, is_dry_run=False, pk__lt=run.pk
        ).aggregate(last=Max("pk"))["last"]
        return int(last or 0)

    def _run_close(self, run: ImportRun) -> ImportRun:
        checkpoints = {
            checkpoint.table: {"read": checkpoint.rows_read, "changed": checkpoint.rows_changed}
            for checkpoint in run.checkpoints.order_by("pk")
        }
        anomalies = Counter(
            LegacyAnomaly.objects.filter(run=run).values_list("kind", flat=True).iterator()
        )
        resolved = Counter(
            LegacyAnomaly.objects.filter(resolved_run=run).values_list("kind", flat=True)
        )
        run.stats = {
            "steps": checkpoints,
            "new_anomalies": dict(sorted(anomalies.items())),
            # found before, no longer found on the rows this run checked again
            "resolved_anomalies": dict(sorted(resolved.items())),
            "seconds": self.seconds,
        }
        run.status = ImportRun.Status.COMPLETED
        run.finished_at = timezone.now()
        run.save(update_fields=["stats", "status", "finished_at"])
        return run

    # ---- checkpoints ------------------------------------------------------------------------
    def _checkpoint(self, run: ImportRun, table: str) -> ImportCheckpoint:
        checkpoint, _ = ImportCheckpoint.objects.get_or_create(run=run, table=table)
        return checkpoint

    def _step_pending(self, run: ImportRun, step: str) -> bool:
        return not self._checkpoint(run, step).is_finished

    def _step_done(self, run: ImportRun, step: str, *, changed: int = 0) -> None:
        ImportCheckpoint.objects.filter(run=run, table=step).update(
            is_finished=True, rows_changed=changed
        )

    # ---- stage one ----------------------------------------------------------------------------
    def _table_stage(self, run: ImportRun, spec: TableSpec, since: datetime | None) -> None:
        checkpoint = self._checkpoint(run, spec.table)
        if checkpoint.is_finished:
            return
        after: str | int = key_initial(spec)
        if checkpoint.last_key:
            after = checkpoint.last_key if spec.key_is_text else int(checkpoint.last_key)
        source = self._source()
        total = source.count(spec.table, since=since) if self.options.show_progress else 0
        bar = tqdm(
            total=total,
            initial=checkpoint.rows_read,
            desc=spec.table,
            unit="row",
            disable=not self.options.show_progress,
        )
        fields = spec.record._fields
        # A PostgreSQL source in this database's encoding sends its pages in COPY's binary
        # format, typed as the staging columns (``LegacySource.copy_page``).
        binary_types = (
            staging_types(table=spec.table, fields=fields)
            if source.encoding() == staging_encoding()
            else None
        )

        def staged(last_key: str, rows: int, result: UpsertResult) -> None:
            """The page's checkpoint, in its transaction."""
            changed = result.inserted + result.updated
            ImportCheckpoint.objects.filter(pk=checkpoint.pk).update(
                last_key=last_key,
                rows_read=checkpoint.rows_read + rows,
                rows_changed=checkpoint.rows_changed + changed,
            )
            checkpoint.rows_read += rows
            checkpoint.rows_changed += changed
            bar.update(rows)

        def is_new_range(after_key: str | int) -> bool:
            if spec.key_is_text:  # the source's collation orders text keys, not ours
                return False
            return staging_is_new_range(table=spec.table, after_key=int(after_key))

        with bar:
            if not self.options.records_in_python:
                while True:
                    last: list[str | None] = [None]

                    def stream(
                        write: Callable[[bytes], None],
                        after: str | int = after,
                        last: list[str | None] = last,
                    ) -> int:
                        rows, last[0] = source.copy_page(
                            spec,
                            after=after,
                            limit=self.batch_size,
                            since=since,
                            run_id=run.pk,
                            write=write,
                            binary_types=binary_types,
                        )
                        return rows

                    with transaction.atomic():
                        is_new = is_new_range(after)
                        result, rows = staging_copy(
                            table=spec.table,
                            fields=fields,
                            stream=stream,
                            run_id=run.pk,
                            is_new_range=is_new,
                            is_binary=binary_types is not None,
                        )
                        if last[0] is not None:
                            if not spec.key_is_text:  # (no text-keyed table has row checks)
                                row_checks_run(
                                    table=spec.table,
                                    run_id=run.pk,
                                    after_key=int(after),
                                    last_key=int(last[0]),
                                    is_new_range=is_new,
                                )
                            staged(last[0], rows, result)
                    if last[0] is None or rows < self.batch_size:
                        break
                    after = last[0] if spec.key_is_text else int(last[0])
            else:
                pages = source.pages(spec, after=after, limit=self.batch_size, since=since)
                for page in pages:
                    with transaction.atomic():
                        is_new = is_new_range(after)
                        result = staging_upsert(
                            table=spec.table,
                            fields=fields,
                            records=page,
                            run_id=run.pk,
                            is_new_range=is_new,
                        )
                        if not spec.key_is_text and not is_new:  # (none text-keyed is checked)
                            row_anomalies_resolve(
                                table=spec.table,
                                run_id=run.pk,
                                after_key=int(after),
                                last_key=int(page[-1][0]),
                            )
                        anomalies_record(
                            anomalies=page_anomalies(spec.table, page), run=run, reopen=True
                        )
                        staged(str(page[-1][0]), len(page), result)
                    after = page[-1][0]
        ImportCheckpoint.objects.filter(pk=checkpoint.pk).update(is_finished=True)

    # ---- stage two: listings (a keyset page per transaction, with its checkpoint) -------------
    def _listings_load(self, run: ImportRun, scope_after: int) -> None:
        checkpoint = self._checkpoint(run, LOAD_LISTINGS)
        if checkpoint.is_finished:
            return
        page: ListingsPage | None = listings_page_next(
            scope_after=scope_after,
            after_key=int(checkpoint.last_key or 0),
            limit=self.batch_size,
        )
        while page is not None:
            with transaction.atomic():
                written = listings_page_load(page=page, run=run, scope_after=scope_after)
                ImportCheckpoint.objects.filter(pk=checkpoint.pk).update(
                    last_key=str(page.last),
                    rows_read=checkpoint.rows_read + page.read,
                    rows_changed=checkpoint.rows_changed + written,
                )
            checkpoint.rows_read += page.read
            checkpoint.rows_changed += written
            page = listings_page_next(
                scope_after=scope_after, after_key=page.last, limit=self.batch_size
            )
        ImportCheckpoint.objects.filter(pk=checkpoint.pk).update(is_finished=True)

    # ---- stage two: the ledger ------------------------------------------------------------------
    def _ledger_load(
        self, run: ImportRun, scope_after: int, step: str, after_key: int, until_key: int | None
    ) -> None:
        """Captured payments with ids in (``after_key``, ``until_key``] posted in SQL (the
        services path, a reference, posts them all in the head's step)."""
        if not self.options.ledger_via_services:

            def load(after: int) -> PagedResult | None:
                page = ledger_page_load(
                    run=run,
                    scope_after=scope_after,
                    after_key=after,
                    limit=self.batch_size,
                    until_key=until_key,
                )
                return None if page is None else PagedResult(page.last_key, page.read, page.posted)

            self._paged(run, step, load, analyze_after_first=LEDGER_TABLES, start_key=after_key)
            return
        if step != LOAD_LEDGER:
            return
        # The reference path: entries planned in Python (``ledger_plan``), each posted through
        # ``entry_post``; a test proves it gives the same ledger as the SQL path.
        checkpoint = self._checkpoint(run, LOAD_LEDGER)
        if checkpoint.is_finished:
            return
        after_key = int(checkpoint.last_key or 0)

        def plan(after: int) -> LedgerPage | None:
            return ledger_page_plan(scope_after=scope_after, after_key=after, limit=self.batch_size)

        with _Prefetcher(plan, enabled=not connection.in_atomic_block) as pages:
            page = pages.first(after_key)
            while page is not None:
                pages.ahead(page.last_key)  # plan the next page while this one is posted
                with transaction.atomic():
                    posted = ledger_page_post(page=page, run=run, via_services=True)
                    ImportCheckpoint.objects.filter(pk=checkpoint.pk).update(
                        last_key=str(page.last_key),
                        rows_read=checkpoint.rows_read + page.payments,
                        rows_changed=checkpoint.rows_changed + posted,
                    )
                checkpoint.rows_read += page.payments
                checkpoint.rows_changed += posted
                page = pages.next()
        ImportCheckpoint.objects.filter(pk=checkpoint.pk).update(is_finished=True)

    # ---- stage two: orders --------------------------------------------------------------------
    def _orders_load(
        self, run: ImportRun, scope_after: int, step: str, after_key: int, until_key: int | None
    ) -> None:
        """Transactions with ids in (``after_key``, ``until_key``] built and written in SQL;
        orders already loaded are moved on."""

        def load(after: int) -> PagedResult | None:
            page = orders_page_load(
                run=run,
                scope_after=scope_after,
                after_key=after,
                limit=self.batch_size,
                until_key=until_key,
            )
            if page is None:
                return None
            return PagedResult(page.last_key, page.read, page.created + page.moved)

        self._paged(run, step, load, start_key=after_key)

    # ---- stage two: a step loaded a key range (page) at a time --------------------------------
    def _paged(
        self,
        run: ImportRun,
        step: str,
        load: Callable[[int], PagedResult | None],
        *,
        analyze_after_first: tuple[str, ...] = (),
        start_key: int = 0,
    ) -> None:
        """``load(after_key)`` writes the next page inside this transaction, which also
        stores the checkpoint: a run killed at any point resumes after the last page. The
        first page starts after ``start_key``."""
        checkpoint = self._checkpoint(run, step)
        if checkpoint.is_finished:
            return
        after_key = int(checkpoint.last_key or start_key)
        bar = tqdm(desc=step, unit="row", disable=not self.options.show_progress)
        with bar:
            while True:
                started = time.perf_counter()
                with transaction.atomic():
                    page = load(after_key)
                    if page is None:
                        break
                    ImportCheckpoint.objects.filter(pk=checkpoint.pk).update(
                        last_key=str(page.last_key),
                        rows_read=checkpoint.rows_read + page.read,
                        rows_changed=checkpoint.rows_changed + page.changed,
                    )
                if analyze_after_first and checkpoint.rows_read == 0:
                    # Fresh statistics, so triggers and foreign key checks plan index lookups
                    # rather than scans of a table thought empty.
                    _tables_analyze(analyze_after_first)
                logger.debug(
                    "legacy import %s: %s rows after key %s in %.2fs",
                    step,
                    page.read,
                    after_key,
                    time.perf_counter() - started,
                )
                checkpoint.rows_read += page.read
                checkpoint.rows_changed += page.changed
                after_key = page.last_key
                bar.update(page.read)
        ImportCheckpoint.objects.filter(pk=checkpoint.pk).update(is_finished=True)


@dataclass(frozen=True, slots=True)
class PagedResult:
    last_key: int
    read: int
    changed: int


class _Prefetcher(Generic[PageT]):
    """Plans the next page (ledger) in a thread (with its own database connection) while the
    caller posts the current one. Only when staging is committed: inside an open transaction
    (a dry run, a test) another connection could not see it, so pages are planned in line."""

    def __init__(self, plan: Callable[[int], PageT | None], *, enabled: bool) -> None:
        self.plan = plan
        self.pool = ThreadPoolExecutor(max_workers=1) if enabled else None
        self.pending: Future[PageT | None] | None = None
        self.after: int | None = None

    def __enter__(self) -> _Prefetcher[PageT]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.pool is not None:
            self.pool.submit(db_connection_close).result()
            self.pool.shutdown()

    def first(self, after: int) -> PageT | None:
        return self.plan(after)

    def ahead(self, after: int) -> None:
        self.after = after
        if self.pool is not None:
            self.pending = self.pool.submit(self.plan, after)

    def next(self) -> PageT | None:
        if self.pending is not None:
            return self.pending.result()
        assert self.after is not None
        return self.plan(self.after)


STAGING_TABLES = tuple(model._meta.db_table for model in STAGING_MODELS.values())
LEDGER_TABLES = ("ledger_journalentry", "ledger_posting", "ledger_ledgeraccount")


def _tables_analyze(tables: tuple[str, ...]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {', '.join(tables)}")


def session_tune() -> None:
    """This connection's settings for bulk work: sort and hash memory, temporary table
    buffers (only settable before the session's first temporary table: kept as it is
    otherwise) and no JIT (its compile time, for each large statement of each page, is spent
    again on every page).

    Commits still wait for their WAL flush: tried with ``synchronous_commit = off`` on one
    million payments, the page commits' statement time stayed (4.3 s before, 3.7 s after, the
    longest 0.4-0.9 s each): the flush is not what they wait for."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('work_mem', %s, false), set_config('jit', 'off', false)",
            [settings.LEGACY_IMPORT_WORK_MEM],
        )
        try:
            with transaction.atomic():
                cursor.execute(
                    "SELECT set_config('temp_buffers', %s, false)",
                    [settings.LEGACY_IMPORT_TEMP_BUFFERS],
                )
        except DatabaseError:  # temporary tables were used already: it stays as it is
            logger.debug("legacy import: temp_buffers kept (temporary tables already used)")


def session_untune() -> None:
    """Back to the server's defaults (the connection may serve other work afterwards)."""
    if connection.needs_rollback:  # a failed dry run or test transaction: rolled back anyway
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute("RESET work_mem; RESET jit")
    except DatabaseError:  # an aborted transaction: its rollback resets them
        logger.debug("legacy import: session settings left to the rollback")


def db_connection_close() -> None:
    connection.close()


def import_summary(run: ImportRun) -> dict[str, Any]:
    return {"run": run.pk, "mode": run.mode, "dry_run": run.is_dry_run, **run.stats}
