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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection

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


def staging_upsert(
    *, table: str, fields: Sequence[str], records: Sequence[Sequence[Any]], run_id: int
) -> UpsertResult:
    """Insert new rows, update changed ones, leave identical ones alone."""
    if not records:
        return UpsertResult(0, 0)
    target = STAGING_MODELS[table]._meta.db_table
    temporary = f"_stage_{target}"
    columns = ", ".join(fields)
    compared = [field for field in fields if field != "legacy_id"]
    assignments = ", ".join(f"{field} = EXCLUDED.{field}" for field in compared)
    old = ", ".join(f"{target}.{field}" for field in compared)
    new = ", ".join(f"EXCLUDED.{field}" for field in compared)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {temporary} ON COMMIT DELETE ROWS"
            f" AS SELECT {columns} FROM {target} WITH NO DATA"
        )
        cursor.execute(f"TRUNCATE {temporary}")
        with cursor.cursor.copy(f"COPY {temporary} ({columns}) FROM STDIN") as copy:
            for record in records:
                copy.write_row(record)
        cursor.execute(
            f"INSERT INTO {target} ({columns}, staged_run_id)"
            f" SELECT {columns}, %s FROM {temporary}"
            f" ON CONFLICT (legacy_id) DO UPDATE SET {assignments},"
            " staged_run_id = EXCLUDED.staged_run_id"
            f" WHERE ({old}) IS DISTINCT FROM ({new})"
            " RETURNING (xmax = 0)",
            [run_id],
        )
        flags = cursor.fetchall()
    inserted = sum(1 for (is_new,) in flags if is_new)
    return UpsertResult(inserted=inserted, updated=len(flags) - inserted)


def anomalies_record(*, anomalies: Sequence[Anomaly], run: ImportRun) -> int:
    """Quarantine anomalies; one row per (kind, table, id) however often it is seen."""
    if not anomalies:
        return 0
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
        ignore_conflicts=True,
    )
    return len(created)
