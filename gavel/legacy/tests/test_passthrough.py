"""Every table travels as COPY text (never parsed in Python) and is checked in SQL: from
MariaDB and from PostgreSQL it stages exactly what the record path (rows read as Python records,
checked by ``reader.ROW_CHECKS``) stages, awkward text included, and finds the same
anomalies."""

from __future__ import annotations

import os

import pytest
from django.db import connection

from gavel.legacy import reader
from gavel.legacy.connections import database_connect
from gavel.legacy.importer import STAGE_LANES, ImportOptions, legacy_import
from gavel.legacy.reader import SPECS_BY_TABLE
from gavel.legacy.staging import STAGING_MODELS
from gavel.legacy.tests.conftest import generated, truncate_import

pytestmark = pytest.mark.django_db

AWKWARD = "tab\there, new\nline, back\\slash \\N, quote ' \" , crème brûlée ✓\r"


def staged() -> dict[str, list[tuple[object, ...]]]:
    tables = [model._meta.db_table for model in STAGING_MODELS.values()]
    found: dict[str, list[tuple[object, ...]]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT kind, legacy_table, legacy_id, is_blocking, details::text"
            " FROM legacy_legacyanomaly ORDER BY 1, 2, 3"
        )
        found["anomalies"] = cursor.fetchall()
        for table in tables:
            cursor.execute(f"SELECT legacy_id, * FROM {table} ORDER BY legacy_id")  # noqa: S608
            names = [column.name for column in cursor.description]
            found[table] = [
                tuple(
                    v for n, v in zip(names, row, strict=True) if n not in {"id", "staged_run_id"}
                )
                for row in cursor.fetchall()
            ]
    return found


def test_copied_tables_stage_and_check_what_the_record_path_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A PostgreSQL source's rows are passed on in groups: 7 rows a write makes pages of 40
    # end on a part of a group, and some groups span the awkward rows.
    monkeypatch.setattr(reader, "RELAY_ROWS", 7)
    sources = [
        generated(dialect, f"pass_{os.getpid()}", payments=150) for dialect in ("mysql", "postgres")
    ]
    for source in sources:
        legacy = database_connect(source.database, autocommit=True)
        with legacy.cursor() as cursor:
            cursor.execute(
                "UPDATE listings SET title = %s, description = NULL WHERE id = 1", [AWKWARD]
            )
            cursor.execute(
                "UPDATE transaction_transitions SET metadata = %s WHERE id = 1", [AWKWARD]
            )
        legacy.close()
    results = []
    for source in sources:
        truncate_import()
        legacy_import(database=source.database, options=ImportOptions(batch_size=40))
        results.append(staged())
    truncate_import()
    legacy_import(
        database=sources[0].database, options=ImportOptions(batch_size=40, records_in_python=True)
    )
    by_records = staged()

    assert all(rows for rows in by_records.values())
    kinds = {kind for kind, *_ in by_records["anomalies"]}
    assert {"null_money", "invalid_stripe_id", "currency_case", "unknown_currency"} <= kinds
    assert results == [by_records, by_records]
    listing = next(row for row in by_records["legacy_legacylisting"] if row[0] == 1)
    assert AWKWARD in listing
    assert None in listing


def test_stage_lanes_stage_every_table_once() -> None:
    staged_tables = [table for lane in STAGE_LANES for table in lane]
    assert sorted(staged_tables) == sorted(SPECS_BY_TABLE)
