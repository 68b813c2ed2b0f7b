"""Tables without row checks travel as COPY text (never parsed in Python): from MariaDB and
from PostgreSQL they stage exactly what the record path stages, awkward text included."""

from __future__ import annotations

import os

import pytest
from django.db import connection

from gavel.legacy import importer
from gavel.legacy.connections import database_connect
from gavel.legacy.importer import ImportOptions, legacy_import
from gavel.legacy.tests.conftest import generated, truncate_import

pytestmark = pytest.mark.django_db

AWKWARD = "tab\there, new\nline, back\\slash \\N, quote ' \" , crème brûlée ✓\r"


def staged() -> dict[str, list[tuple[object, ...]]]:
    tables = (
        "legacy_legacyperson",
        "legacy_legacylisting",
        "legacy_legacyordertransition",
        "legacy_legacypaymentsetting",
    )
    found = {}
    with connection.cursor() as cursor:
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


def test_passed_through_tables_stage_what_the_record_path_stages(monkeypatch) -> None:
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
    monkeypatch.setattr(importer, "is_passed_through", lambda spec: False)
    legacy_import(database=sources[0].database, options=ImportOptions(batch_size=40))
    by_records = staged()

    assert all(rows for rows in by_records.values())
    assert results == [by_records, by_records]
    listing = next(row for row in by_records["legacy_legacylisting"] if row[0] == 1)
    assert AWKWARD in listing
    assert None in listing
