"""Planner settings for a block of bulk statements, in the caller's transaction.

Bulk writers join tables they filled a moment before (temporary tables, never analysed): the
planner, with no statistics, guesses their sizes and key counts, and for two tables read
whole often picks a merge join, sorting both sides by the join key. Sorting text by the
database's collation (``C.UTF-8`` and the like go through the C library for every
comparison) is the most expensive step of such a statement. A hash join reads each side once
and compares bytes; these helpers tell the planner so for the statements of a block.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection
from django.db.backends.utils import CursorWrapper
from psycopg.pq import TransactionStatus


@contextmanager
def planner_settings(cursor: CursorWrapper, **settings: str) -> Iterator[None]:
    """The given planner settings (``enable_nestloop="off"``, …) for the statements of the
    block, local to the caller's transaction; the values they had before afterwards."""
    if not connection.in_atomic_block:
        raise RuntimeError("planner settings are local to the caller's transaction")
    names = sorted(settings)
    cursor.execute(
        "SELECT " + ", ".join("current_setting(%s)" for _ in names),
        names,
    )
    before = dict(zip(names, cursor.fetchone(), strict=True))
    cursor.execute(
        "SELECT " + ", ".join("set_config(%s, %s, true)" for _ in names),
        [value for name in names for value in (name, settings[name])],
    )
    try:
        yield
    finally:
        # A statement that failed aborted the transaction: its rollback resets them.
        if not connection.needs_rollback and not _is_aborted():
            cursor.execute(
                "SELECT " + ", ".join("set_config(%s, %s, true)" for _ in names),
                [value for name in names for value in (name, before[name])],
            )


def _is_aborted() -> bool:
    """The connection's transaction failed (only a rollback is accepted now)."""
    raw = connection.connection
    return raw is not None and raw.info.transaction_status == TransactionStatus.INERROR


@contextmanager
def hash_joins_only(cursor: CursorWrapper, *, merge_joins: bool = True) -> Iterator[None]:
    """No nested-loop joins for the statements of the block (and, with ``merge_joins=False``,
    no merge joins either: joins by hash)."""
    settings = {"enable_nestloop": "off"}
    if not merge_joins:
        settings["enable_mergejoin"] = "off"
    with planner_settings(cursor, **settings):
        yield
