"""Foreign keys checked a batch at a time instead of a row at a time (docs/adr/0010).

PostgreSQL checks a foreign key with one trigger call per inserted row: a query that finds the
referenced row and locks it ``FOR KEY SHARE``. For a bulk writer (the legacy import writes a
quarter of a million postings per page) those calls cost a large share of its time. Inside
``inserts_checked_in_bulk`` the transaction runs with ``session_replication_role = replica``,
which skips them (and nothing else: every guard trigger of ours fires ``ALWAYS``); at the end
of the block ``references_check`` does what they would have done for the rows inserted, in one
statement per foreign key: every referenced row exists, and it is locked ``FOR KEY SHARE``
until the transaction ends, so none can be deleted under it.

Setting the role needs a superuser, or ``GRANT SET ON PARAMETER session_replication_role`` to
the role that runs the writer. Without it (or with
``settings.SET_BASED_REFERENCE_CHECKS = False``) PostgreSQL checks every row as usual and
``inserts_checked_in_bulk`` yields False.
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
def inserts_checked_in_bulk(*written: type[models.Model]) -> Iterator[bool]:
    """Inside the caller's transaction: skip PostgreSQL's row-by-row foreign key checks for
    the block, then check the foreign keys of every row of the ``written`` models inserted
    since the block began (primary keys above the largest one at its start), one statement
    per foreign key. Yields whether the checks are set-based (False: PostgreSQL checks every
    row as usual). Covers inserts only: a block must not change a foreign key column of an
    existing row."""
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
    floors = {model: _largest_key(model) for model in written}
    try:
        yield True
        for model, floor in floors.items():
            references_check(
                model, where=f"{model._meta.pk.column} > %(floor)s", params={"floor": floor}
            )
    finally:
        if not connection.needs_rollback:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL session_replication_role = origin")
            except DatabaseError:  # an aborted transaction: its rollback restores the role
                logger.debug("replication role left to the rollback")


def _largest_key(model: type[models.Model]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COALESCE(max({model._meta.pk.column}), 0) FROM {model._meta.db_table}"
        )
        (largest,) = cursor.fetchone()
    return int(largest)


def references_check(
    model: type[models.Model], *, where: str, params: Mapping[str, Any] | None = None
) -> None:
    """For the rows of ``model`` that ``where`` selects: every foreign key the table has points
    at a row that exists, now locked ``FOR KEY SHARE``. Raises IntegrityError naming the first
    one that does not, as PostgreSQL's own check would (the caller's transaction is then
    rolled back)."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        # Only the foreign keys the table has now, as PostgreSQL would: a first legacy import
        # drops those of the empty tables it fills and checks them when it adds them back
        # (docs/adr/0012).
        cursor.execute(
            "SELECT a.attname FROM pg_constraint c"
            " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)"
            " WHERE c.conrelid = %s::regclass AND c.contype = 'f'",
            [table],
        )
        constrained = {column for (column,) in cursor.fetchall()}
        for field in model._meta.concrete_fields:
            if not isinstance(field, models.ForeignKey) or field.column not in constrained:
                continue
            column = field.column
            target = field.related_model._meta.db_table  # type: ignore[union-attr]
            target_column = field.target_field.column
            # One statement: the keys the rows hold, the referenced rows locked, and the first
            # key (if any) that found no row.
            cursor.execute(
                f"WITH wanted AS MATERIALIZED (SELECT DISTINCT {column} AS key FROM {table}"
                f" WHERE ({where}) AND {column} IS NOT NULL),"
                f" locked AS MATERIALIZED (SELECT t.{target_column} AS key FROM {target} t"
                f" WHERE t.{target_column} IN (SELECT key FROM wanted) FOR KEY SHARE OF t)"
                " SELECT min(w.key) FROM wanted w"
                " WHERE NOT EXISTS (SELECT 1 FROM locked l WHERE l.key = w.key)",
                params or {},
            )
            (missing,) = cursor.fetchone()
            if missing is None:
                continue
            raise IntegrityError(
                f'insert into "{table}" violates foreign key on "{column}":'
                f' key {missing} is not present in table "{target}"'
            )
