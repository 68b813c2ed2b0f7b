"""Secondary indexes of empty Gavel tables built after a first import, not row by row (ADR 0011).

A first import writes millions of orders, order lines, history rows, journal entries,
postings and links from order lines to listings. Keeping each secondary index up to date
costs a B-tree descent per row and index; building the index once from the loaded table is a
sort, several times cheaper. So before stage two, ``indexes_defer`` drops the secondary
indexes of every table that is still empty (one that holds a row is left alone: a Gavel
already in use keeps its indexes), and ``indexes_restore`` builds them again once the load
and the links are done. Stage one does the same for the staging tables it fills (their
indexes are built before the cross-table checks, which read them).

Their foreign keys too (ADR 0012): dropped with the indexes, they are added again after the
load, PostgreSQL checking every row in one query, where the load would check them a page at a
time (ADR 0010) against a million rows it wrote itself.

Never deferred: primary keys and unique indexes (constraints, and what the load's
``ON CONFLICT`` relies on for idempotence), and any index the load reads while it writes
(``KEPT``, empty since the balance trigger stopped reading the postings' ``entry_id``
index). Each drop is recorded as a ``DeferredIndex`` row in the transaction that drops it,
and each rebuild deletes its row in the transaction that builds it: whatever stops a run,
the database knows which indexes and foreign keys are missing, and the next run (or
``manage.py legacy_import --restore-indexes``) restores them.
"""

# SQL here is built from catalog names (tables, indexes and constraints read from pg_index and
# pg_constraint) and the definitions PostgreSQL itself printed (pg_get_indexdef,
# pg_get_constraintdef), never from input.
# ruff: noqa: S608

from __future__ import annotations

import logging
import re
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import OperationalError, connection, models, transaction
from django.db.models.expressions import RawSQL

from gavel.ledger.models import JournalEntry, Posting
from gavel.legacy.models import DeferredIndex, ImportedListingOrderLine, ImportRun
from gavel.payments.models import Order, OrderLine, OrderTransition

logger = logging.getLogger(__name__)

# The Gavel tables a first import fills, and its links from order lines to listings.
DEFERRABLE: tuple[type[models.Model], ...] = (
    Order,
    OrderLine,
    OrderTransition,
    JournalEntry,
    Posting,
    ImportedListingOrderLine,
)
# (table, indexed columns) the load reads while it writes. None now: the ledger's balance
# trigger reads only the rows each statement inserts (ledger migration 0007), not the
# postings' ``entry_id`` index.
KEPT: frozenset[tuple[str, tuple[str, ...]]] = frozenset()


@dataclass(frozen=True, slots=True)
class IndexBuilt:
    name: str
    table: str
    seconds: float


def indexes_defer(
    *, run: ImportRun, written: Iterable[type[models.Model]] = DEFERRABLE
) -> list[str]:
    """Drop the secondary indexes and foreign keys of each ``written`` model's table that is
    empty (Gavel's ``DEFERRABLE`` tables, or the staging tables before stage one), recording
    each; returns their names. One transaction: each table is locked against writes while it
    is found empty and they are dropped."""
    if connection.vendor != "postgresql":
        return []
    deferred: list[str] = []
    with transaction.atomic(), connection.cursor() as cursor:
        for model in written:
            table = model._meta.db_table
            cursor.execute(f"LOCK TABLE {table} IN SHARE MODE")
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table})")
            (has_rows,) = cursor.fetchone()
            if has_rows:
                continue
            for name, definition, columns in _secondary_indexes(table):
                if (table, columns) in KEPT:
                    continue
                DeferredIndex.objects.create(name=name, table=table, definition=definition, run=run)
                cursor.execute(f'DROP INDEX "{name}"')
                deferred.append(name)
            for name, definition in _foreign_keys(table):
                DeferredIndex.objects.create(
                    name=name,
                    table=table,
                    kind=DeferredIndex.Kind.FOREIGN_KEY,
                    definition=definition,
                    run=run,
                )
                cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
                deferred.append(name)
    if deferred:
        logger.info(
            "legacy import: %d indexes and foreign keys deferred: %s",
            len(deferred),
            ", ".join(deferred),
        )
    return deferred


def table_filled_by_run(*, run: ImportRun, model: type[models.Model]) -> bool:
    """Whether ``run`` found ``model``'s table empty and deferred its indexes, which are still
    missing: every row in it now is one this run wrote (its pages are disjoint and each
    commits with its checkpoint, so a resumed run never writes one again), and a row it writes
    cannot clash with one it did not. The load may then insert without ``ON CONFLICT``: a
    clash would fail the page on the unique index, not pass unnoticed."""
    return DeferredIndex.objects.filter(run=run, table=model._meta.db_table).exists()


def _foreign_keys(table: str) -> list[tuple[str, str]]:
    """(name, definition) of the table's own foreign keys (ADR 0012): those it references
    other tables by, not those other tables reference it by."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
            [table],
        )
        return [(name, definition) for name, definition in cursor]


def _secondary_indexes(table: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """(name, definition, key columns) of the table's valid indexes that are neither unique,
    nor a primary key, nor behind a constraint."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid),"
            " ARRAY(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
            " ORDER BY k.n)"
            " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = %s::regclass AND NOT i.indisunique AND NOT i.indisprimary"
            " AND i.indisvalid"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
            " ORDER BY c.relname",
            [table],
        )
        return [(name, definition, tuple(columns)) for name, definition, columns in cursor]


def indexes_restore(*, tables: Collection[str] | None = None) -> list[IndexBuilt]:
    """Build every recorded index again (any run's; only those of ``tables`` when given), one
    per transaction, each deleting its record; the largest tables first. Several connections
    may call this at once: each takes the next index no other is building (``SKIP LOCKED``)
    whose tables it can lock at once (``_tables_lock``): a build never waits behind another
    (an index and a foreign key of one table exclude each other) or behind a writer. One that
    none can take yet is tried again shortly; each call returns when every index left is
    being built by another."""
    if connection.vendor != "postgresql":
        return []
    built: list[IndexBuilt] = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('maintenance_work_mem', %s, false)",
            [settings.LEGACY_IMPORT_MAINTENANCE_WORK_MEM],
        )
    busy_rounds = 0
    try:
        while True:
            # After a while of finding every table locked (a writer outside the import keeps
            # taking one), wait for the locks in line instead of trying again.
            outcome = _next_restore(tables, is_waiting=busy_rounds >= RESTORE_BUSY_ROUNDS)
            if isinstance(outcome, IndexBuilt):
                built.append(outcome)
                busy_rounds = 0
            elif outcome == "none_left":
                break
            else:  # "busy": every one left is locked by a writer or another build
                busy_rounds += 1
                time.sleep(RESTORE_RETRY_SECONDS)
    finally:
        if not connection.needs_rollback:
            with connection.cursor() as cursor:
                cursor.execute("RESET maintenance_work_mem")
    return built


RESTORE_RETRY_SECONDS = 0.2
RESTORE_BUSY_ROUNDS = 150  # 30 s of finding every table left locked
_LOCK_NOT_AVAILABLE = "55P03"
_REFERENCED_TABLE = re.compile(r"REFERENCES ([\w.\"]+)\(")


def _next_restore(tables: Collection[str] | None, *, is_waiting: bool) -> IndexBuilt | str:
    """Restore the next index or foreign key this connection can take: the built one,
    ``"none_left"`` when every one left (of ``tables``) is another connection's, or
    ``"busy"`` when some are left that no connection holds but their tables are locked."""
    recorded = DeferredIndex.objects.all()
    if tables is not None:
        recorded = recorded.filter(table__in=tables)
    candidates = list(
        recorded.annotate(size=RawSQL('pg_relation_size("table"::regclass)', ()))
        .order_by("-size", "pk")
        .values_list("pk", flat=True)
    )
    is_busy = False
    for pk in candidates:
        with transaction.atomic():
            try:
                with transaction.atomic():  # a savepoint: a lock refused takes nothing
                    deferred = (
                        DeferredIndex.objects.select_for_update(skip_locked=True)
                        .filter(pk=pk)
                        .first()
                    )
                    if deferred is None:  # another connection's, or restored since
                        continue
                    _tables_lock(deferred, is_waiting=is_waiting)
            except OperationalError as error:
                if getattr(error.__cause__, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
                    raise
                is_busy = True
                continue
            started = time.perf_counter()
            if deferred.kind == DeferredIndex.Kind.FOREIGN_KEY:
                _foreign_key_add(deferred)
            else:
                with connection.cursor() as cursor:
                    cursor.execute(
                        deferred.definition.replace(
                            "CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1
                        )
                    )
            deferred.delete()
        return IndexBuilt(deferred.name, deferred.table, time.perf_counter() - started)
    return "busy" if is_busy else "none_left"


def _tables_lock(deferred: DeferredIndex, *, is_waiting: bool) -> None:
    """The locks its restore takes, taken now or refused at once (``NOWAIT``; waited for with
    ``is_waiting``): an index, its table's ``SHARE`` (CREATE INDEX's own); a foreign key,
    ``SHARE ROW EXCLUSIVE`` on its table and the table it references (ADD FOREIGN KEY's own)."""
    nowait = "" if is_waiting else " NOWAIT"
    with connection.cursor() as cursor:
        if deferred.kind == DeferredIndex.Kind.FOREIGN_KEY:
            referenced = _REFERENCED_TABLE.search(deferred.definition)
            locked = [deferred.table] + ([referenced.group(1)] if referenced else [])
            cursor.execute(f"LOCK TABLE {', '.join(locked)} IN SHARE ROW EXCLUSIVE MODE{nowait}")
        else:
            cursor.execute(f"LOCK TABLE {deferred.table} IN SHARE MODE{nowait}")


def _foreign_key_add(deferred: DeferredIndex) -> None:
    """Add a deferred foreign key again, checking every row of its table in one query
    (PostgreSQL's own validation scan; IntegrityError names a row that breaks it, and the
    record stays for the next try). Nothing to do for one the table has already."""
    if deferred.name in dict(_foreign_keys(deferred.table)):
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f'ALTER TABLE {deferred.table} ADD CONSTRAINT "{deferred.name}" {deferred.definition}'
        )


def indexes_missing() -> list[str]:
    """Names of the indexes and foreign keys deferred and not restored yet."""
    return list(DeferredIndex.objects.order_by("pk").values_list("name", flat=True))
