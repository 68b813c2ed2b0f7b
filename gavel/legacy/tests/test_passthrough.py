"""Every table travels as COPY data (never parsed in Python: text from MariaDB, the binary
format from PostgreSQL) and is checked in SQL: from MariaDB and from PostgreSQL it stages
exactly what the record path (rows read as Python records, checked by ``reader.ROW_CHECKS``)
stages, awkward text included, and finds the same anomalies."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from django.db import connection

from gavel.legacy import reader
from gavel.legacy.connections import database_connect
from gavel.legacy.importer import STAGE_LANES, ImportOptions, legacy_import
from gavel.legacy.reader import SPECS_BY_TABLE, LegacySource, key_initial
from gavel.legacy.staging import STAGING_MODELS, staging_copy, staging_encoding, staging_types
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
            # Both currency columns of one transaction unknown, both of another lower case:
            # one anomaly each, naming both columns.
            cursor.execute(
                "UPDATE transactions SET unit_price_currency = 'zzz',"
                " minimum_commission_currency = 'qqq' WHERE id = 2"
            )
            cursor.execute(
                "UPDATE transactions SET unit_price_currency = 'usd',"
                " minimum_commission_currency = ' eur' WHERE id = 3"
            )
            cursor.execute("UPDATE stripe_payments SET currency = NULL WHERE id = 4")
            # Terms the portal's rules cannot price, on Stripe transactions; the same on
            # another gateway's is never used, and not checked.
            cursor.execute(
                "UPDATE transactions SET payment_gateway = 'stripe', listing_quantity = 0,"
                " commission_from_buyer = -1, unit_price_currency = 'EUR',"
                " minimum_commission_currency = 'EUR', minimum_buyer_fee_cents = 30,"
                " minimum_buyer_fee_currency = 'GBP' WHERE id = 6"
            )
            cursor.execute(
                "UPDATE transactions SET payment_gateway = 'stripe', unit_price_cents = NULL,"
                " shipping_price_cents = -5, unit_price_currency = NULL WHERE id = 7"
            )
            cursor.execute(
                "UPDATE transactions SET payment_gateway = 'stripe', unit_price_cents = 0,"
                " shipping_price_cents = NULL WHERE id = 8"
            )
            cursor.execute(
                "UPDATE transactions SET payment_gateway = 'paypal', unit_price_cents = NULL,"
                " listing_quantity = -1, unit_price_currency = NULL WHERE id = 9"
            )
            cursor.execute(
                "UPDATE stripe_payments SET fee_cents = -fee_cents, real_fee_cents = -1"
                " WHERE id = 5"
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
    both = {
        (kind, legacy_id): details
        for kind, table, legacy_id, _, details in by_records["anomalies"]
        if table == "transactions" and legacy_id in ("2", "3")
    }
    assert (
        "unknown_currency",
        "stripe_payments",
        "4",
        True,
        '{"value": null, "column": "currency"}',
    ) in (by_records["anomalies"])
    assert (
        "negative_money",
        "stripe_payments",
        "5",
        True,
        '{"columns": ["fee_cents", "real_fee_cents"]}',
    ) in by_records["anomalies"]
    assert both == {
        ("unknown_currency", "2"): '{"also": [{"value": "qqq", "column":'
        ' "minimum_commission_currency"}], "value": "zzz", "column": "unit_price_currency"}',
        ("currency_case", "3"): '{"also": [{"value": " eur", "column":'
        ' "minimum_commission_currency"}], "value": "usd", "column": "unit_price_currency"}',
    }
    terms = {
        (kind, legacy_id): (is_blocking, details)
        for kind, table, legacy_id, is_blocking, details in by_records["anomalies"]
        if table == "transactions"
        and legacy_id in ("6", "7", "8", "9")
        and kind in {"invalid_terms", "null_money", "negative_money", "unknown_currency"}
    }
    assert terms == {
        ("invalid_terms", "6"): (
            True,
            '{"columns": ["listing_quantity", "commission_from_buyer",'
            ' "minimum_buyer_fee_currency"]}',
        ),
        ("null_money", "7"): (True, '{"columns": ["unit_price_cents"]}'),
        ("negative_money", "7"): (True, '{"columns": ["shipping_price_cents"]}'),
        ("unknown_currency", "7"): (True, '{"value": null, "column": "unit_price_currency"}'),
        ("invalid_terms", "8"): (True, '{"columns": ["unit_price_cents"]}'),
    }
    assert results == [by_records, by_records]
    listing = next(row for row in by_records["legacy_legacylisting"] if row[0] == 1)
    assert AWKWARD in listing
    assert None in listing


def test_stage_lanes_stage_every_table_once() -> None:
    staged_tables = [table for lane in STAGE_LANES for table in lane]
    assert sorted(staged_tables) == sorted(SPECS_BY_TABLE)


@pytest.mark.parametrize("table", ["people", "stripe_payments"])
def test_a_binary_page_holds_the_text_pages_rows_and_last_key(table: str) -> None:
    """Binary COPY pages, one row (the file header rides with it), several, and none (the
    header and the trailer alone), stage what text pages stage and end on the same key."""
    spec = SPECS_BY_TABLE[table]
    fields = spec.record._fields
    types = staging_types(table=table, fields=fields)
    source = generated("postgres", f"binary_{os.getpid()}", payments=30)
    with LegacySource(source.database) as legacy:
        assert legacy.encoding() == staging_encoding()
        keys = [key for key, *_ in legacy.query(f"SELECT id FROM {table} ORDER BY id")]  # noqa: S608
        after = key_initial(spec)
        for limit in (1, 7, 1000):
            found = {}
            for binary in (None, types):
                truncate_import()
                chunks: list[bytes] = []
                sent, last = legacy.copy_page(
                    spec,
                    after=after,
                    limit=limit,
                    since=None,
                    run_id=1,
                    write=chunks.append,
                    binary_types=binary,
                )

                def stream(write: Callable[[bytes], None], chunks: list[bytes] = chunks) -> int:
                    for chunk in chunks:
                        write(chunk)
                    return 0

                staging_copy(
                    table=table,
                    fields=fields,
                    stream=stream,
                    run_id=1,
                    is_new_range=True,
                    is_binary=binary is not None,
                )
                found[binary is not None] = (sent, last, staged())
            assert found[True] == found[False]
            sent, last, _ = found[True]
            expected = keys[:limit]
            assert sent == len(expected)
            assert last == str(expected[-1])
        for binary in (None, types):
            assert legacy.copy_page(
                spec,
                after=keys[-1],
                limit=10,
                since=None,
                run_id=1,
                write=lambda _: None,
                binary_types=binary,
            ) == (0, None)
