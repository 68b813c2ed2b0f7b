from __future__ import annotations

import os

from gavel.legacy.connections import database_connect
from gavel.legacy.generator import DEFAULT_RATES, GeneratorConfig, legacy_generate
from gavel.legacy.tests.conftest import generated


def column_types(source, table):
    connection = database_connect(source.database)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name, column_type FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s",
            [source.database.name, table],
        )
        types = dict(cursor.fetchall())
        cursor.execute(
            "SELECT table_collation FROM information_schema.tables"
            " WHERE table_schema = %s AND table_name = %s",
            [source.database.name, table],
        )
        (collation,) = cursor.fetchone()
    connection.close()
    return types, collation


def test_mysql_tables_use_the_rails_types(legacy_source):
    if legacy_source.dialect != "mysql":
        return
    people, collation = column_types(legacy_source, "people")
    assert collation.startswith("utf8mb3")
    assert people["id"] == "varchar(22)"
    assert people["uuid"] == "binary(16)"
    assert people["deleted"] == "tinyint(1)"
    assert people["created_at"] == "datetime"
    payments, _ = column_types(legacy_source, "stripe_payments")
    assert payments["real_fee_cents"].startswith("int")


def test_the_same_seed_gives_the_same_portal_on_both_servers():
    mysql = generated("mysql", f"det_{os.getpid()}", payments=120)
    postgres = generated("postgres", f"det_{os.getpid()}", payments=120)
    assert mysql.manifest.to_json() == postgres.manifest.to_json()
    rows = {}
    for source in (mysql, postgres):
        connection = database_connect(source.database)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, status, sum_cents, currency, stripe_charge_id FROM stripe_payments"
                " ORDER BY id"
            )
            rows[source.dialect] = [tuple(row) for row in cursor.fetchall()]
        connection.close()
    assert rows["mysql"] == rows["postgres"]
    assert len(rows["mysql"]) == 120


def test_every_anomaly_kind_is_injected_and_rates_can_be_turned_off(legacy_source):
    assert set(legacy_source.manifest.anomalies) == set(DEFAULT_RATES)
    quiet = generated("postgres", f"quiet_{os.getpid()}", payments=60)
    database = quiet.database
    manifest = legacy_generate(
        database=database,
        config=GeneratorConfig(payments=60, seed=3, rates=dict.fromkeys(DEFAULT_RATES, 0.0)),
    )
    assert manifest.anomalies == {}
    assert manifest.row_counts["stripe_payments"] == 60
