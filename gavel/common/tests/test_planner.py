"""Planner settings for a block of statements: in force inside it, as before after it."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from gavel.common.planner import hash_joins_only, planner_settings

pytestmark = pytest.mark.django_db


def _settings() -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('enable_nestloop'), current_setting('enable_mergejoin')"
        )
        nestloop, mergejoin = cursor.fetchone()
    return nestloop, mergejoin


def test_joins_by_hash_inside_the_block_and_the_settings_as_before_after_it() -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        before = _settings()
        with hash_joins_only(cursor, merge_joins=False):
            assert _settings() == ("off", "off")
            # The plan of a join of two unanalysed tables: by hash, not merged or looped.
            cursor.execute("CREATE TEMPORARY TABLE _a (k bigint) ON COMMIT DROP")
            cursor.execute("CREATE TEMPORARY TABLE _b (k bigint) ON COMMIT DROP")
            cursor.execute("EXPLAIN SELECT * FROM _a JOIN _b USING (k)")
            plan = "\n".join(line for (line,) in cursor.fetchall())
            assert "Hash Join" in plan
        assert _settings() == before
        with hash_joins_only(cursor):
            assert _settings() == ("off", before[1])
        assert _settings() == before


def test_a_failed_statement_in_the_block_is_the_error_the_caller_sees() -> None:
    with (
        pytest.raises(DatabaseError, match="division by zero"),
        transaction.atomic(),
        connection.cursor() as cursor,
        planner_settings(cursor, enable_nestloop="off"),
    ):
        cursor.execute("SELECT 1 / 0")
    assert _settings()[0] == "on"  # the rollback reset it


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_settings_are_refused() -> None:
    with (
        pytest.raises(RuntimeError, match="local to the caller's transaction"),
        connection.cursor() as cursor,
        planner_settings(cursor, enable_nestloop="off"),
    ):
        pass
