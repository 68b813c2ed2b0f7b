"""Foreign keys checked a batch at a time instead of a row at a time (docs/adr/0010).

PostgreSQL checks a foreign key with one trigger call per inserted row: a query that finds the
referenced row and locks it ``FOR KEY SHARE``. For a bulk writer (the legacy import writes a
quarter of a million postings per page) those calls cost a third of its time. Inside
``row_references_skipped`` the transaction runs with ``session_replication_role = replica``,
which skips them (and nothing else: every guard trigger of ours fires ``ALWAYS``);
``references_check`` then does what they would have done for the batch, in one statement per
foreign key: every referenced row exists, and it is locked ``FOR KEY SHARE`` until the
transaction ends, so none can be deleted under it.

Setting the role needs a superuser, or ``GRANT SET ON PARAMETER session_replication_role`` to
the role that runs the writer. Without it (or with
``settings.SET_BASED_REFERENCE_CHECKS = False``) PostgreSQL checks every row as usual and
``row_references_skipped`` yields False.
"""

# SQL here is built from Django model metadata (tables and columns), never from input; the
# caller's ``where`` is SQL of its own with bound parameters.
# ruff: noqa: S608

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, models, transaction

logger = logging.getLogger(__name__)


@contextmanager
def row_references_skipped() -> Iterator[bool]:
    """Inside the caller's transaction: skip PostgreSQL's row-by-row foreign key checks until
    the block ends. Yields whether they are skipped; when they are, the caller must call
    ``references_check`` for every model it writes before the block ends."""
    if connection.vendor != "postgresql" or not settings.SET_BASED_REFERENCE_CHECKS:
        yield False
        return
    assert connection.in_atomic_block, "the role lasts for the caller's transaction"
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
    except DatabaseError as error:  # not allowed to: PostgreSQL checks every row
        logger.info("row-by-row foreign key checks kept: %s", error)
        yield False
        return
    try:
        yield True
    finally:
        if not connection.needs_rollback:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL session_replication_role = origin")
            except DatabaseError:  # an aborted transaction: its rollback restores the role
                logger.debug("replication role left to the rollback")


def references_check(
    model: type[models.Model], *, where: str, params: Mapping[str, Any] | None = None
) -> None:
    """For the rows of ``model`` that ``where`` selects: every foreign key points at a row
    that exists, now locked ``FOR KEY SHARE``. Raises IntegrityError naming the first one that
    does not, as PostgreSQL's own check would (the caller's transaction is then rolled back)."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        for field in model._meta.concrete_fields:
            if not isinstance(field, models.ForeignKey):
                continue
            column = field.column
            target = field.related_model._meta.db_table  # type: ignore[union-attr]
            target_column = field.target_field.column
            wanted = (
                f"SELECT DISTINCT {column} FROM {table} WHERE ({where}) AND {column} IS NOT NULL"
            )
            cursor.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM {target} t WHERE t.{target_column} IN"
                f" ({wanted}) FOR KEY SHARE OF t) locked",
                params or {},
            )
            (locked,) = cursor.fetchone()
            cursor.execute(f"SELECT count(*) FROM ({wanted}) w", params or {})
            (referenced,) = cursor.fetchone()
            if locked == referenced:
                continue
            cursor.execute(
                f"SELECT w.{column} FROM ({wanted}) w WHERE NOT EXISTS"
                f" (SELECT 1 FROM {target} t WHERE t.{target_column} = w.{column}) LIMIT 1",
                params or {},
            )
            (missing,) = cursor.fetchone()
            raise IntegrityError(
                f'insert into "{table}" violates foreign key on "{column}":'
                f' key {missing} is not present in table "{target}"'
            )
