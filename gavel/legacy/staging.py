"""Writing stage one's records into the staging tables, and anomalies into the quarantine.

One ``COPY`` into a temporary table, then one ``INSERT … ON CONFLICT (legacy_id) DO UPDATE …
WHERE … IS DISTINCT FROM …``: a row that did not change is not touched, so a second run over
the same legacy data changes nothing, and ``staged_run_id`` marks exactly what changed.
"""

# SQL here is built from identifiers in this code (tables, columns, state names), never from
# input; every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Field

from gavel.legacy.models import (
    ImportRun,
    LegacyAnomaly,
    LegacyListing,
    LegacyOrder,
    LegacyOrderTransition,
    LegacyPayment,
    LegacyPaymentSetting,
    LegacyPerson,
    LegacyStripeAccount,
    StagedRow,
)
from gavel.legacy.reader import Anomaly
from gavel.legacy.states import BLOCKING_ANOMALIES

STAGING_MODELS: dict[str, type[StagedRow]] = {
    "people": LegacyPerson,
    "stripe_accounts": LegacyStripeAccount,
    "payment_settings": LegacyPaymentSetting,
    "listings": LegacyListing,
    "transactions": LegacyOrder,
    "transaction_transitions": LegacyOrderTransition,
    "stripe_payments": LegacyPayment,
}


@dataclass(frozen=True, slots=True)
class UpsertResult:
    inserted: int
    updated: int


# COPY data (text format, one row per line, ``staged_run_id`` last) written to a writer:
# ``stream(write)`` sends a page and returns how many rows it sent.
CopyStream = Callable[[Callable[[bytes], None]], int]


def staging_is_new_range(*, table: str, after_key: int) -> bool:
    """No staged row has a key after ``after_key``: the next page only adds rows, so it may be
    copied straight into the staging table (a first run, a resumed one, new legacy rows).
    Checked inside the page's transaction; the unique key still refuses a duplicate."""
    target = STAGING_MODELS[table]._meta.db_table
    with connection.cursor() as cursor:
        # max() is one probe of the unique index, whatever the (stale) statistics say.
        cursor.execute(f"SELECT max(legacy_id) FROM {target}")
        (last,) = cursor.fetchone()
    return last is None or int(last) <= after_key


def staging_upsert(
    *,
    table: str,
    fields: Sequence[str],
    records: Sequence[Sequence[Any]],
    run_id: int,
    is_new_range: bool = False,
) -> UpsertResult:
    """Insert new rows, update changed ones, leave identical ones alone. ``is_new_range``
    (``staging_is_new_range``): every row is new, copied straight in."""
    if not records:
        return UpsertResult(0, 0)
    result, _ = _staging_write(
        table=table, fields=fields, run_id=run_id, rows=records, is_new_range=is_new_range
    )
    return result


def staging_copy(
    *,
    table: str,
    fields: Sequence[str],
    stream: CopyStream,
    run_id: int,
    is_new_range: bool,
    is_binary: bool = False,
) -> tuple[UpsertResult, int]:
    """``staging_upsert`` for a page that arrives as COPY data (a PostgreSQL source's own
    ``COPY … TO STDOUT``, passed through without parsing a row): text, or with ``is_binary``
    COPY's binary format, typed as ``staging_types`` gives. Returns the result and how many
    rows the page had."""
    return _staging_write(
        table=table,
        fields=fields,
        run_id=run_id,
        stream=stream,
        is_new_range=is_new_range,
        is_binary=is_binary,
    )


def staging_types(*, table: str, fields: Sequence[str]) -> list[str]:
    """The SQL types of the staging columns ``fields``: what a binary COPY page must hold."""
    meta = STAGING_MODELS[table]._meta
    columns = [meta.get_field(field) for field in fields]
    return [str(column.db_type(connection)) for column in columns if isinstance(column, Field)]


def staging_encoding() -> str:
    """This database's character encoding (a binary COPY page's text must be in it)."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_encoding")
        (encoding,) = cursor.fetchone()
    return str(encoding)


def _staging_write(
    *,
    table: str,
    fields: Sequence[str],
    run_id: int,
    is_new_range: bool,
    rows: Sequence[Sequence[Any]] | None = None,
    stream: CopyStream | None = None,
    is_binary: bool = False,
) -> tuple[UpsertResult, int]:
    target = STAGING_MODELS[table]._meta.db_table
    columns = ", ".join(fields)

    def copy_into(relation: str) -> int:
        with connection.cursor() as cursor:
            statement = f"COPY {relation} ({columns}, staged_run_id) FROM STDIN" + (
                " (FORMAT binary)" if is_binary else ""
            )
            with cursor.cursor.copy(statement) as copy:
                if stream is not None:
                    count = stream(copy.write)
                else:
                    assert rows is not None
                    for row in rows:
                        copy.write_row((*row, run_id))
                    count = len(rows)
        return count

    if is_new_range:
        count = copy_into(target)
        return UpsertResult(inserted=count, updated=0), count
    temporary = f"_stage_{target}"
    compared = [field for field in fields if field != "legacy_id"]
    assignments = ", ".join(f"{field} = EXCLUDED.{field}" for field in compared)
    old = ", ".join(f"{target}.{field}" for field in compared)
    new = ", ".join(f"EXCLUDED.{field}" for field in compared)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {temporary} ON COMMIT DELETE ROWS"
            f" AS SELECT {columns}, staged_run_id FROM {target} WITH NO DATA"
        )
        cursor.execute(f"TRUNCATE {temporary}")
    count = copy_into(temporary)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {target} ({columns}, staged_run_id)"
            f" SELECT {columns}, staged_run_id FROM {temporary}"
            f" ON CONFLICT (legacy_id) DO UPDATE SET {assignments},"
            " staged_run_id = EXCLUDED.staged_run_id"
            f" WHERE ({old}) IS DISTINCT FROM ({new})"
            " RETURNING (xmax = 0)"
        )
        flags = cursor.fetchall()
    inserted = sum(1 for (is_new,) in flags if is_new)
    return UpsertResult(inserted=inserted, updated=len(flags) - inserted), count


def anomalies_record(*, anomalies: Sequence[Anomaly], run: ImportRun, reopen: bool = False) -> int:
    """Quarantine anomalies; one row per (kind, table, id) however often it is seen (with
    ``reopen``, one a run had resolved is opened again, with the details seen now)."""
    if not anomalies:
        return 0
    conflicts: dict[str, Any] = (
        {
            "update_conflicts": True,
            "unique_fields": ["kind", "legacy_table", "legacy_id"],
            "update_fields": ["resolved_run", "details"],
        }
        if reopen
        else {"ignore_conflicts": True}
    )
    created = LegacyAnomaly.objects.bulk_create(
        [
            LegacyAnomaly(
                kind=anomaly.kind,
                legacy_table=anomaly.legacy_table,
                legacy_id=anomaly.legacy_id,
                is_blocking=anomaly.kind in BLOCKING_ANOMALIES,
                details=json.loads(json.dumps(anomaly.details, default=str)),
                run=run,
            )
            for anomaly in anomalies
        ],
        **conflicts,
    )
    return len(created)
